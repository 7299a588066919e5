"""Compiling the Vyper contracts shipped in this package, with an on-disk cache.

The sources live in ``pervasive/contracts/vyper/<name>.vy`` (package data). Compiling
takes seconds, so artifacts are cached as
``<home>/artifacts/<name>-<sha256(source + vyper version + EVM version)>.json``: a
second run with the same source and compiler reads the JSON instead of compiling. A
changed source, a new vyper or a new hard fork gives a new file name, so a stale
artifact is never used.

Example::

    artifact = compile_contract("registry", cache_dir=settings.path("artifacts"))
    artifact.bytecode[:2]   # b'a\\x..' (init code)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from pervasive.chain.hardfork import HARDFORK
from pervasive.errors import InternalError, NotFound

__all__ = [
    "EVM_VERSION",
    "Artifact",
    "compile_contract",
    "compile_source",
    "contract_source",
    "source_hash",
    "vyper_version",
]

EVM_VERSION = HARDFORK
"""The hard fork the contracts target: the one the embedded and anvil backends run."""


@dataclass(frozen=True)
class Artifact:
    """A compiled contract: its ABI (JSON entries), init bytecode and the hash it was built from."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: bytes
    source_hash: str
    """sha256 of the source text, the vyper version and the EVM version, hex."""

    @property
    def abi_hash(self) -> str:
        """sha256 of the canonical ABI JSON, hex: changes whenever the interface changes."""
        return hashlib.sha256(json.dumps(self.abi, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> str:
        """The cache file's content."""
        return json.dumps(
            {
                "name": self.name,
                "abi": list(self.abi),
                "bytecode": "0x" + self.bytecode.hex(),
                "source_hash": self.source_hash,
                "vyper_version": vyper_version(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Artifact:
        """Parse a cache file written by :meth:`to_json`."""
        raw = json.loads(text)
        return cls(
            name=str(raw["name"]),
            abi=tuple(raw["abi"]),
            bytecode=bytes.fromhex(str(raw["bytecode"]).removeprefix("0x")),
            source_hash=str(raw["source_hash"]),
        )


def contract_source(name: str) -> str:
    """The Vyper source shipped as ``pervasive/contracts/vyper/<name>.vy``.

    Example: ``"def register_user" in contract_source("registry")``.
    """
    resource = resources.files("pervasive.contracts").joinpath("vyper", f"{name}.vy")
    if not resource.is_file():
        raise NotFound(f"no contract named {name!r} ships with pervasive")
    return resource.read_text(encoding="utf-8")


def vyper_version() -> str:
    """The installed vyper's version, read without importing the compiler (slow to load)."""
    return metadata.version("vyper")


def source_hash(source: str) -> str:
    """sha256 of ``source``, the vyper version and the EVM version, hex (the cache key)."""
    key = f"{source}\0vyper {vyper_version()}\0evm {EVM_VERSION}"
    return hashlib.sha256(key.encode()).hexdigest()


def compile_source(name: str, source: str) -> Artifact:
    """Compile Vyper ``source`` for :data:`EVM_VERSION`, without any cache.

    A compile error in a shipped contract is a bug in pervasive (:class:`InternalError`).

    Example: ``compile_source("registry", contract_source("registry")).abi``.
    """
    from vyper.compiler import compile_code
    from vyper.compiler.settings import Settings as VyperSettings
    from vyper.exceptions import VyperException

    try:
        output = compile_code(
            source,
            output_formats=["abi", "bytecode"],
            settings=VyperSettings(evm_version=EVM_VERSION),
        )
    except VyperException as exc:
        raise InternalError(f"contract {name!r} does not compile: {exc}") from exc
    return Artifact(
        name=name,
        abi=tuple(output["abi"]),
        bytecode=bytes.fromhex(str(output["bytecode"]).removeprefix("0x")),
        source_hash=source_hash(source),
    )


@functools.lru_cache(maxsize=32)
def _compiled(name: str, source: str) -> Artifact:
    # a process compiles each shipped source once: wrappers' ``at()`` ask for the ABI often
    return compile_source(name, source)


def compile_contract(name: str, *, cache_dir: Path | None = None) -> Artifact:
    """Compile the shipped contract ``name``, or read it from ``cache_dir`` when cached.

    An unreadable cache file is replaced by a fresh compilation.

    Example: ``compile_contract("registry", cache_dir=settings.path("artifacts"))``.
    """
    source = contract_source(name)
    digest = source_hash(source)
    cache_file = cache_dir / f"{name}-{digest}.json" if cache_dir is not None else None
    if cache_file is not None and cache_file.is_file():
        try:
            cached = Artifact.from_json(cache_file.read_text())
        except (ValueError, KeyError, TypeError):
            cached = None
        if cached is not None and cached.source_hash == digest:
            return cached
    artifact = _compiled(name, source)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        partial.write_text(artifact.to_json())
        partial.replace(cache_file)
    return artifact
