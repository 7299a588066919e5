"""The embedded ledger: py-evm in this process (through eth-tester), state kept on disk.

eth-tester keeps its chain in memory; a CLI that registers a user in one process and
lists users in the next needs the chain to outlive the process. We give py-evm a
key-value store backed by SQLite and rebuild the tester chain from the stored head,
so the embedded chain persists exactly like a node's database would: every mined
block is committed before the request that mined it returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.vm.forks.prague import PragueVM
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import (
    generate_genesis_state_for_keys,
    get_default_genesis_params,
)

from pervasive.chain.hardfork import HARDFORK
from pervasive.errors import ConfigError, InternalError
from pervasive.store import open_database

__all__ = ["SqliteKeyValue", "persistent_tester"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;"
_HEAD_KEY = b"pervasive:has-genesis"
_CHAIN_ID_KEY = b"pervasive:chain-id"  # absent in files made before chain ids were settable
_VMS: dict[str, Any] = {"prague": PragueVM}  # py-evm's VM class per hard fork name


class SqliteKeyValue(BaseDB):
    """py-evm's key-value database interface over one SQLite table.

    Writes collect in an open SQLite transaction until :meth:`commit`, so a block's
    trie nodes land atomically.
    """

    def __init__(self, path: Path) -> None:
        self._db: sqlite3.Connection = open_database(path, schema=_SCHEMA)

    def __getitem__(self, key: bytes) -> bytes:
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        cursor = self._db.execute("DELETE FROM kv WHERE k = ?", (key,))
        if cursor.rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        return self._db.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    def __iter__(self) -> Iterator[bytes]:
        return (bytes(row[0]) for row in self._db.execute("SELECT k FROM kv"))

    def commit(self) -> None:
        """Make every write so far durable."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Commit and close the file."""
        self.commit()
        self._db.close()


def _with_chain_id(chain_class: Any, chain_id: int) -> Any:
    if chain_id == chain_class.chain_id:
        return chain_class
    # py-evm reads the id from the chain class (EIP-155 checks, the CHAINID opcode)
    return type(chain_class.__name__, (chain_class,), {"chain_id": chain_id})


def persistent_tester(
    path: Path | None, *, chain_id: int | None = None
) -> tuple[EthereumTester, SqliteKeyValue | None]:
    """An eth-tester chain whose state lives in the SQLite file at ``path``.

    With ``path=None`` the chain lives in memory (tests that want a fresh chain).
    The dev accounts are eth-tester's ten funded keys, the same on every start. The
    chain runs :data:`~pervasive.chain.hardfork.HARDFORK` rules from genesis (pinned,
    not eth-tester's default of the day). ``chain_id`` replaces eth-tester's fixed id
    (131277322940537), so two embedded chains can stand for two different networks.
    A persisted chain keeps the id it was created with: reopened without ``chain_id``
    it has that id; with another one, :class:`ConfigError`.
    """
    vm = _VMS.get(HARDFORK)
    if vm is None:
        raise InternalError(f"the embedded chain has no py-evm VM for hard fork {HARDFORK!r}")
    backend = PyEVMBackend(vm_configuration=((0, vm),))
    default_class: Any = type(backend.chain)
    if path is None:
        if chain_id is not None:
            backend.chain = _with_chain_id(default_class, chain_id).from_genesis(
                AtomicDB(),
                get_default_genesis_params(),
                generate_genesis_state_for_keys(backend.account_keys),
            )
        return EthereumTester(backend), None
    store = SqliteKeyValue(path)
    database = AtomicDB(store)
    if store.exists(_HEAD_KEY):
        has_id = store.exists(_CHAIN_ID_KEY)
        stored = int(store[_CHAIN_ID_KEY]) if has_id else int(default_class.chain_id)
        if chain_id is not None and chain_id != stored:
            store.close()
            raise ConfigError(
                f"the embedded chain at {path} has chain id {stored}, not {chain_id}: "
                "open it with its own id, or use another data directory"
            )
        backend.chain = _with_chain_id(default_class, stored)(database)
    else:
        chain_class = _with_chain_id(default_class, chain_id or int(default_class.chain_id))
        genesis_state = generate_genesis_state_for_keys(backend.account_keys)
        backend.chain = chain_class.from_genesis(
            database, get_default_genesis_params(), genesis_state
        )
        store[_CHAIN_ID_KEY] = str(chain_class.chain_id).encode()
        store[_HEAD_KEY] = b"1"
        store.commit()
    return EthereumTester(backend), store
