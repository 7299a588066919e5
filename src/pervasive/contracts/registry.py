"""The typed Python wrapper of ``vyper/registry.vy`` (paper 002's mainContract).

Every write validates its input first (``entities.check_*``) and checks that the id
is free, so a malformed key or a duplicate id fails with a clear
:class:`~pervasive.errors.InvalidInput` before a transaction is signed. What only the
chain can decide (who owns an entity) comes back as
:class:`~pervasive.errors.TransactionReverted` carrying the contract's reason.

Example::

    registry = await Registry.open(ledger, ledger.dev_signer(0))
    await registry.add_user("alice")
    await registry.get_user("alice")   # User(id='alice', account='0x...', ...)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pervasive.chain import Receipt
from pervasive.contracts.handle import ContractHandle
from pervasive.crypto import checksum_address
from pervasive.domain import (
    FieldType,
    IntermediateNode,
    Sensor,
    SensorField,
    User,
    check_account,
    check_endpoint,
    check_fields,
    check_id,
    check_public_key,
    check_sensor_type,
)
from pervasive.errors import InvalidInput, NotFound, TransactionReverted

__all__ = ["REGISTRY", "Registry"]

REGISTRY = "registry"
"""The contract's name: its source is ``vyper/registry.vy``, its deployment record key."""

T = TypeVar("T")


def _user(raw: Sequence[Any]) -> User:
    return User(str(raw[0]), checksum_address(raw[1]), checksum_address(raw[2]), bool(raw[3]))


def _sensor(raw: Sequence[Any]) -> Sensor:
    fields = tuple(SensorField(str(name), FieldType.from_code(int(code))) for name, code in raw[3])
    return Sensor(
        id=str(raw[0]),
        public_key=bytes(raw[1]),
        sensor_type=str(raw[2]),
        fields=fields,
        owner=checksum_address(raw[4]),
        active=bool(raw[5]),
    )


def _node(raw: Sequence[Any]) -> IntermediateNode:
    return IntermediateNode(
        id=str(raw[0]),
        account=checksum_address(raw[1]),
        public_key=bytes(raw[2]),
        endpoint=str(raw[3]),
        owner=checksum_address(raw[4]),
        active=bool(raw[5]),
    )


class Registry(ContractHandle):
    """A deployed registry; writes are sent from ``signer``.

    Build one with :meth:`open` (deploys on first use) or :meth:`find` (never deploys).
    """

    NAME = REGISTRY
    MISSING = (
        "register something first (pervasive registry user add ...) "
        "or run `pervasive demo registry`"
    )

    async def _get(self, kind: str, function: str, key: Any, build: Callable[[Any], T]) -> T:
        try:
            return build(await self.contract.call(function, key))
        except TransactionReverted as exc:
            if exc.reason in (f"unknown {kind}", "index out of range"):
                raise NotFound(f"no {kind} {key!r} in the registry at {self.address}") from None
            raise

    async def _list(
        self, count: str, at: Callable[[int], Awaitable[T]], offset: int, limit: int | None
    ) -> list[T]:
        total = int(await self.contract.call(count))
        stop = total if limit is None else min(total, offset + limit)
        return list(await asyncio.gather(*(at(i) for i in range(offset, stop))))

    async def _refuse_taken(self, kind: str, entity_id: str) -> None:
        if await self.contract.call(f"has_{kind}", entity_id):
            raise InvalidInput(
                f"{kind} {entity_id!r} is already registered (ids are unique and never reused): "
                f"choose another id; `pervasive registry {kind} show {entity_id}` shows it"
            )

    # -- users ------------------------------------------------------------------------
    async def add_user(self, user_id: str, account: str | None = None) -> Receipt:
        """Register user ``user_id`` acting as ``account`` (default: the signer).

        Example: ``await registry.add_user("alice")``.
        """
        check_id("user", user_id)
        address = check_account(account or self._signer_address(), what="user account")
        await self._refuse_taken("user", user_id)
        if await self.contract.call("is_active_user", address):
            raise InvalidInput(f"account {address} already belongs to a user: one user per account")
        return await self._send("register_user", user_id, address)

    async def update_user(self, user_id: str, account: str) -> Receipt:
        """Move user ``user_id`` to ``account`` (only its owner may)."""
        check_id("user", user_id)
        return await self._send("update_user", user_id, check_account(account))

    async def deactivate_user(self, user_id: str) -> Receipt:
        """Deactivate user ``user_id`` for good (only its owner may)."""
        return await self._send("deactivate_user", check_id("user", user_id))

    async def get_user(self, user_id: str) -> User:
        """The user ``user_id``; :class:`NotFound` when unregistered."""
        return await self._get("user", "user", user_id, _user)

    async def has_user(self, user_id: str) -> bool:
        """Whether ``user_id`` was ever registered."""
        return bool(await self.contract.call("has_user", user_id))

    async def list_users(self, offset: int = 0, limit: int | None = None) -> list[User]:
        """Users in registration order."""

        async def at(i: int) -> User:
            return await self._get("user", "user_at", i, _user)

        return await self._list("user_count", at, offset, limit)

    # -- sensors ----------------------------------------------------------------------
    async def add_sensor(
        self,
        sensor_id: str,
        public_key: bytes | str,
        sensor_type: str,
        fields: Sequence[SensorField],
    ) -> Receipt:
        """Declare sensor ``sensor_id``: ``{PU_s, c_s, type_1 x_1, ...}``.

        Example: ``await registry.add_sensor("temp-1", key, "temperature",
        [SensorField.parse("celsius:int64")])``.
        """
        check_id("sensor", sensor_id)
        args = self._sensor_args(public_key, sensor_type, fields)
        await self._refuse_taken("sensor", sensor_id)
        return await self._send("register_sensor", sensor_id, *args)

    async def update_sensor(
        self,
        sensor_id: str,
        public_key: bytes | str,
        sensor_type: str,
        fields: Sequence[SensorField],
    ) -> Receipt:
        """Replace the key, type and fields of sensor ``sensor_id`` (only its owner may)."""
        check_id("sensor", sensor_id)
        args = self._sensor_args(public_key, sensor_type, fields)
        return await self._send("update_sensor", sensor_id, *args)

    @staticmethod
    def _sensor_args(
        public_key: bytes | str, sensor_type: str, fields: Sequence[SensorField]
    ) -> tuple[bytes, str, list[tuple[str, int]]]:
        checked = check_fields(tuple(fields))
        return (
            check_public_key(public_key),
            check_sensor_type(sensor_type),
            [(f.name, FieldType.parse(str(f.type)).code) for f in checked],
        )

    async def deactivate_sensor(self, sensor_id: str) -> Receipt:
        """Deactivate sensor ``sensor_id`` for good (only its owner may)."""
        return await self._send("deactivate_sensor", check_id("sensor", sensor_id))

    async def get_sensor(self, sensor_id: str) -> Sensor:
        """The sensor ``sensor_id``; :class:`NotFound` when unregistered."""
        return await self._get("sensor", "sensor", sensor_id, _sensor)

    async def has_sensor(self, sensor_id: str) -> bool:
        """Whether ``sensor_id`` was ever registered."""
        return bool(await self.contract.call("has_sensor", sensor_id))

    async def list_sensors(self, offset: int = 0, limit: int | None = None) -> list[Sensor]:
        """Sensors in registration order."""

        async def at(i: int) -> Sensor:
            return await self._get("sensor", "sensor_at", i, _sensor)

        return await self._list("sensor_count", at, offset, limit)

    # -- intermediate nodes -----------------------------------------------------------
    async def add_node(
        self, node_id: str, account: str, public_key: bytes | str, endpoint: str
    ) -> Receipt:
        """Register intermediate node ``node_id``.

        Example: ``await registry.add_node("node-1", key.address, key.public_key.to_bytes(),
        "mqtts://node1.example:8883")``.
        """
        check_id("node", node_id)
        address = check_account(account, what="node account")
        key, url = check_public_key(public_key), check_endpoint(endpoint)
        await self._refuse_taken("node", node_id)
        if await self.contract.call("is_active_node", address):
            raise InvalidInput(f"account {address} already belongs to a node: one node per account")
        return await self._send("register_node", node_id, address, key, url)

    async def update_node(
        self, node_id: str, account: str, public_key: bytes | str, endpoint: str
    ) -> Receipt:
        """Replace the account, key and endpoint of node ``node_id`` (only its owner may)."""
        check_id("node", node_id)
        address = check_account(account, what="node account")
        key, url = check_public_key(public_key), check_endpoint(endpoint)
        return await self._send("update_node", node_id, address, key, url)

    async def deactivate_node(self, node_id: str) -> Receipt:
        """Deactivate node ``node_id`` for good (only its owner may)."""
        return await self._send("deactivate_node", check_id("node", node_id))

    async def get_node(self, node_id: str) -> IntermediateNode:
        """The intermediate node ``node_id``; :class:`NotFound` when unregistered."""
        return await self._get("node", "node", node_id, _node)

    async def has_node(self, node_id: str) -> bool:
        """Whether ``node_id`` was ever registered."""
        return bool(await self.contract.call("has_node", node_id))

    async def list_nodes(self, offset: int = 0, limit: int | None = None) -> list[IntermediateNode]:
        """Intermediate nodes in registration order."""

        async def at(i: int) -> IntermediateNode:
            return await self._get("node", "node_at", i, _node)

        return await self._list("node_count", at, offset, limit)

    def _signer_address(self) -> str:
        if self.signer is None:
            raise InvalidInput("this registry handle has no signer: use with_signer(...) first")
        return self.signer.address
