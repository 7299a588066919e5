"""A node started through ``running_node`` publishes the agreed code to its content store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from node_harness import Harness

from pervasive.apps.smartlock import FUNCTIONS, RENTAL_TIME
from pervasive.offchain import source_hash
from pervasive.offchain.node.runner import running_node
from pervasive.storage import ContentStore, cid_for_digest

Make = Callable[..., Awaitable[Harness]]


async def test_the_node_puts_the_source_the_agreement_names(make: Make, tmp_path: Path) -> None:
    h = await make(nodes=2)
    store = ContentStore(tmp_path / "content")
    cid = cid_for_digest(h.agreement.terms.function_hash)
    assert not store.has(cid)
    await h.broker.settle()  # the node identity's ACL is applied in the background
    async with running_node(
        h.ledger, h.registry, h.agreement.address, h.node_signers[0], h.options("svc:node.n0"),
        database=tmp_path / "node-0.sqlite", functions=FUNCTIONS,
        artifacts=h.artifacts, content=store,
    ):  # fmt: skip
        pass
    source = store.get(cid).decode("utf-8")
    assert source == RENTAL_TIME.source
    assert source_hash(source) == h.agreement.terms.function_hash
    assert source.startswith("def monthly_rental_time(")
