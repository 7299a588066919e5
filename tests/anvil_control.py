"""Test-only control of an anvil node through its development methods.

``anvil_reorg``, ``evm_setAutomine`` and friends are not part of the ledger's API (a
production node has none of them); fault tests call them through this one helper.

Example::

    await anvil_call(ledger, "anvil_reorg", [1, []])  # the head block replaced by an empty one
"""

from __future__ import annotations

from typing import Any

from pervasive.chain import Ledger

__all__ = ["anvil_call"]


async def anvil_call(ledger: Ledger, method: str, params: list[Any]) -> Any:
    """Call ``method`` on the anvil node behind ``ledger``; its result, or fail the test."""
    answer = await ledger.w3.provider.make_request(method, params)  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]
