"""A whole oracle committee as tasks of one event loop (demos, tests, benchmarks).

In production each node is its own ``pervasive oracle run`` process; a demo (paper 001's
logistics case study) or a benchmark runs the same :class:`OracleNode` code as asyncio
tasks. :func:`local_committee` starts one node per key, each with its own MQTT
connection (made by the caller: identities come from the platform CA, a layer above)
and its own SQLite file, waits until all follow the hub, and stops them on exit.

Example::

    async def connect(index: int) -> MqttConnection:
        client = MqttClient(platform.client_options(f"svc:oracle.{index}"))
        await client.connect()
        return client

    async with local_committee(hub, keys, connect=connect, folder=home / "oracle",
                               allow=["http://127.0.0.1:8080/"],
                               settings=settings.oracle) as nodes:
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from pervasive.chain import Signer
from pervasive.config import OracleSettings
from pervasive.contracts.oracle_hub import OracleHub
from pervasive.crypto import PrivateKey
from pervasive.messaging.port import MqttConnection
from pervasive.oracle.node import OracleNode
from pervasive.oracle.readings import DeclarationsReader
from pervasive.oracle.sources import CidReader, SourceFetcher

__all__ = ["local_committee"]


@contextlib.asynccontextmanager
async def local_committee(
    hub: OracleHub,
    keys: Sequence[PrivateKey],
    *,
    connect: Callable[[int], Awaitable[MqttConnection]],
    folder: Path,
    allow: Sequence[str],
    settings: OracleSettings,
    cid: CidReader | None = None,
    declarations: DeclarationsReader | None = None,
    start_block: int = 0,
) -> AsyncIterator[list[OracleNode]]:
    """Run one :class:`OracleNode` per key (node ``i`` is ``keys[i - 1]``) until exit.

    ``connect(i)`` returns node ``i``'s connected MQTT session (closed by the caller, or
    on exit when it has an async ``close``); with ``declarations`` (the registry's
    sensors) the nodes follow device readings and answer DEVICE queries.
    """
    nodes: list[OracleNode] = []
    tasks: list[asyncio.Task[None]] = []
    connections: list[MqttConnection] = []
    try:
        for index, key in enumerate(keys, 1):
            connection = await connect(index)
            connections.append(connection)
            node = OracleNode(
                key=key, hub=hub.with_signer(Signer.from_key(key.secret)),
                connection=connection, database=folder / f"oracle-{index}.sqlite",
                fetcher=SourceFetcher(
                    allow=allow, fetch_timeout=settings.fetch_timeout,
                    max_response_bytes=settings.max_response_bytes, cid=cid,
                ),
                settings=settings, start_block=start_block, declarations=declarations,
            )  # fmt: skip
            ready = asyncio.Event()
            task = asyncio.create_task(node.run(ready=ready), name=f"oracle-{index}")
            waiter = asyncio.ensure_future(ready.wait())
            await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done():
                task.result()  # the node could not start: raise why
            nodes.append(node)
            tasks.append(task)
        yield nodes
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for connection in connections:
            close = getattr(connection, "close", None)
            if close is not None:
                await close()
