"""Composing a node from its parts: what ``pervasive node run`` and the demos share.

:func:`running_node` reads the agreement and its sensors from the chain, resolves
``f`` by name (its source hash must equal the agreement's), connects to the broker
under the node's service identity with a durable session (the broker keeps sensor
messages for it while it is down) and starts an :class:`IntermediateNodeService`.
A node run by the CLI in its own process and a node run as a task of a demo go
through this one function. Given a ``content`` store, the node also puts the agreed
source there (its CID digest is the agreement's ``function_hash``), so any party can
fetch the exact code the agreement names; it never runs code read from the store.

Example::

    async with running_node(ledger, registry, address, signer, mqtt_options,
                            database=db_path, functions=FUNCTIONS,
                            content=ContentStore(home / "content")) as node:
        await node.wait_for(lambda n: n.stats.agreed >= 1, timeout=60)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pervasive.chain import Ledger, Signer
from pervasive.config import NodeSettings
from pervasive.contracts.registry import Registry
from pervasive.crypto import PrivateKey
from pervasive.messaging import ClientOptions, MqttClient
from pervasive.offchain.functions import FunctionRegistry, store_function_source
from pervasive.offchain.node.chain import ContractAgreementPort, load_agreement
from pervasive.offchain.node.service import IntermediateNodeService, NodeEvent

if TYPE_CHECKING:
    from pervasive.storage import ContentStore

__all__ = ["running_node"]


@asynccontextmanager
async def running_node(
    ledger: Ledger,
    registry: Registry,
    agreement: str,
    signer: Signer,
    mqtt: ClientOptions,
    *,
    database: Path,
    functions: FunctionRegistry,
    options: NodeSettings | None = None,
    on_event: Callable[[NodeEvent], None] | None = None,
    artifacts: Path | None = None,
    content: ContentStore | None = None,
) -> AsyncIterator[IntermediateNodeService]:
    """Run the node of ``signer`` for ``agreement`` until the block exits.

    Raises :class:`~pervasive.errors.NotFound` for an unknown agreement or function,
    :class:`~pervasive.offchain.functions.FunctionMismatch` when the registered code
    differs from the agreed one, and :class:`~pervasive.errors.InvalidInput` when
    ``signer`` is not one of the agreement's nodes.
    """
    loaded = await load_agreement(ledger, registry, agreement, artifacts=artifacts)
    spec = loaded.spec
    function = functions.resolve(spec.function_name, spec.function_hash)
    if content is not None:
        store_function_source(content, function)
    key = PrivateKey(signer.private_key)
    async with MqttClient(mqtt) as client:
        service = IntermediateNodeService(
            key=key,
            agreement=spec,
            function=function,
            connection=client,
            chain=ContractAgreementPort(loaded.contract, signer),
            database=database,
            sensor_ids=loaded.sensor_ids,
            options=options,
            on_event=on_event,
        )
        async with service:
            yield service
