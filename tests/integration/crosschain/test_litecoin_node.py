"""The litecoind process: start, answer, refuse cleanly when down, stop.

Example: ``pytest tests/integration/crosschain/test_litecoin_node.py -q``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pervasive.crosschain.errors import LitecoinUnavailable
from pervasive.crosschain.litecoin import LitecoinNode, LitecoinRpc, find_litecoind
from pervasive.errors import InvalidInput

pytestmark = pytest.mark.litecoin


async def test_a_stopped_node_is_reported_unreachable_with_what_to_do(tmp_path: Path) -> None:
    node = LitecoinNode(datadir=tmp_path / "ltc")
    await node.start()
    url = node.url
    assert await node.rpc.call("getblockcount") == 0
    assert node.wallet in await node.rpc.call("listwallets")
    await node.stop()
    assert not node.running
    rpc = LitecoinRpc(url, "pervasive", "x")
    with pytest.raises(LitecoinUnavailable, match=r"cannot be reached.*start the node"):
        await rpc.call("getblockcount")
    await rpc.close()
    with pytest.raises(LitecoinUnavailable, match="not started"):
        _ = node.rpc


async def test_a_restarted_node_keeps_its_chain_and_wallet(tmp_path: Path) -> None:
    node = LitecoinNode(datadir=tmp_path / "ltc")
    await node.start()
    await node.fund()
    with pytest.raises(InvalidInput, match="at least 1"):
        await node.mine(0)
    balance = await node.rpc.call("getbalance", wallet=node.wallet)
    await node.stop()
    await node.start()
    try:
        assert await node.rpc.call("getblockcount") == 101
        assert await node.rpc.call("getbalance", wallet=node.wallet) == balance > 0
    finally:
        await node.stop()


def test_a_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(LitecoinUnavailable, match="not found"):
        find_litecoind(tmp_path / "nope")
