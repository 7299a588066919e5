"""A reused nonce is recognised in each node's words, so a lost answer is not a refusal.

geth, anvil and Besu say "nonce too low"; the embedded chain (eth-tester) says "Invalid
transaction nonce: Expected N, but got M". The transaction manager must read both, or a
send whose answer was lost but which was mined is reported refused on the embedded
chain (and on it borrowed through the gateway).
"""

from __future__ import annotations

import pytest
from coincurve import PrivateKey

from pervasive.chain import Ledger, TransactionRefused
from pervasive.chain.signing import UnsignedTransaction, sign_transaction
from pervasive.chain.transactions import nonce_too_low


async def test_the_embedded_chains_words_for_a_used_nonce_read_as_too_low(ledger: Ledger) -> None:
    signer = ledger.dev_signer(5)
    fees = await ledger.rpc.fees(total_gas=21_000)
    nonce = await ledger.nonce(signer.address)

    def signed(nonce: int, value: int) -> bytes:
        unsigned = UnsignedTransaction(ledger.chain_id, nonce, fees[0], fees[1], 21_000,
                                       bytes(20), value, b"")  # fmt: skip
        return sign_transaction(unsigned, PrivateKey(signer.private_key)).raw

    first = await ledger.rpc.send_raw(signed(nonce, 1))
    # mined first: while it waits in anvil's pool the node answers "replacement
    # transaction underpriced" instead, a different refusal from the one tested here
    await ledger.rpc.wait_for_receipt([first])
    with pytest.raises(TransactionRefused) as reused:
        await ledger.rpc.send_raw(signed(nonce, 2))  # another transaction, same nonce
    assert nonce_too_low(reused.value.message), reused.value.message


@pytest.mark.parametrize(
    ("message", "too_low"),
    [
        ("nonce too low: next nonce 5, tx nonce 4", True),  # geth
        ("Nonce too low", True),  # anvil
        ("Invalid transaction nonce: Expected 5, but got 4", True),  # eth-tester
        ("Invalid transaction nonce: Expected 5, but got 6", False),  # a gap, not a reuse
        ("insufficient funds for gas * price + value", False),
    ],
)
def test_each_dialect(message: str, too_low: bool) -> None:
    assert nonce_too_low(message) is too_low
