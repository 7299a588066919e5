"""The sale order's whole life on a real anvil node: create, buy, receipt, check, release.

The unit tests run every rule on the embedded chain; this one shows the same contracts,
wrapper and receipt work against a real JSON-RPC node (revert reasons decoded from its
errors, logs read back with ``eth_getLogs``), the order being a minimal proxy whose calls
anvil runs through ``DELEGATECALL``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pervasive.chain import open_ledger
from pervasive.config import Settings
from pervasive.contracts import DeploymentBook, SaleOrder, SaleOrderFactory
from pervasive.crypto import PrivateKey
from pervasive.domain import SaleReceipt
from pervasive.errors import TransactionReverted

pytestmark = pytest.mark.anvil

PRICE = 50 * 10**18


async def test_a_sale_from_creation_to_release_on_anvil(tmp_settings: Settings) -> None:
    async with await open_ledger(replace(tmp_settings, backend="anvil"), persist=False) as ledger:
        seller, buyer, warehouse = ledger.dev_signer(1), ledger.dev_signer(2), ledger.dev_signer(3)
        book = DeploymentBook(tmp_settings.home / "deployments.sqlite")
        factory = await SaleOrderFactory.open(ledger, seller, book=book)
        start = await ledger.block_number()
        order = await factory.create("Tesla", "alpha", 2019, PRICE, "4AA6", warehouse.address)
        assert await factory.orders_of_seller(seller.address) == [order.address]
        implementation = await factory.contract.call("IMPLEMENTATION")
        assert len(await ledger.code(order.address)) == 45  # EIP-1167
        assert bytes.fromhex(implementation[2:]) in await ledger.code(order.address)
        with pytest.raises(TransactionReverted, match="this contract holds no item"):
            await SaleOrder.at(ledger, implementation, buyer).buy()

        before = await ledger.balance(seller.address)
        await order.with_signer(buyer).buy()
        assert await ledger.balance(seller.address) == before + PRICE
        with pytest.raises(TransactionReverted, match="this item is already sold"):
            await order.with_signer(ledger.dev_signer(4)).buy()
        assert await factory.orders_of_buyer(buyer.address) == [order.address]

        # the buyer's barcode, scanned and checked at the warehouse door
        key = PrivateKey(buyer.private_key)
        text = SaleReceipt.sign(key, ledger.chain_id, order.address, buyer.address).encode()
        scanned = SaleReceipt.decode(text)
        scanned.verify(chain_id=ledger.chain_id)
        door = (await SaleOrderFactory.find(ledger, book)).order(scanned.order)
        assert await door.verify_ownership(scanned.buyer)
        assert not await door.verify_ownership(seller.address)
        with pytest.raises(TransactionReverted, match="only the order's warehouse account"):
            await door.with_signer(buyer).release(scanned.buyer)
        await door.with_signer(warehouse).release(scanned.buyer)
        assert not await door.verify_ownership(scanned.buyer)
        with pytest.raises(TransactionReverted, match="the item was already released"):
            await door.with_signer(warehouse).release(scanned.buyer)

        events = await factory.events(start + 1)
        assert [(e.kind, e.order) for e in events] == [
            ("created", order.address),
            ("sold", order.address),
            ("released", order.address),
        ]
        item = (await factory.items([order.address]))[0]
        assert (item.buyer, item.sold, item.released) == (buyer.address, True, True)
        book.close()
