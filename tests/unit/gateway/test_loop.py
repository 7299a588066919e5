"""The gateway's event loop: uvloop's where installed, asyncio's otherwise."""

from __future__ import annotations

import asyncio
import importlib.util

from pervasive.gateway import loop_factory


def test_the_loop_factory_makes_a_running_loop() -> None:
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        kind = runner.run(_kind())
    expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    assert kind.startswith(expected)


async def _kind() -> str:
    return type(asyncio.get_running_loop()).__module__
