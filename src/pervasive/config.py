"""Settings: one place that reads ``pervasive.toml``, ``PERVASIVE_*`` variables and flags.

Precedence, lowest to highest: built-in defaults, the file, the environment, flags.
No other module reads the environment; the composition root (the CLI, a test
fixture) builds one :class:`Settings` and hands it down.

Example::

    settings = load_settings(flags={"backend": "anvil"})
    settings.data_dir   # Path('.pervasive')
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pervasive.errors import ConfigError

__all__ = ["BACKENDS", "CONFIG_FILE", "ENV_PREFIX", "BackendName", "Settings", "load_settings"]

BackendName = Literal["embedded", "anvil", "rpc"]
BACKENDS: tuple[BackendName, ...] = ("embedded", "anvil", "rpc")
ENV_PREFIX = "PERVASIVE_"
CONFIG_FILE = "pervasive.toml"


@dataclass(frozen=True)
class Settings:
    """Everything a pervasive process needs to know before it starts."""

    home: Path = Path(".pervasive")
    """Data directory: keystore, SQLite state, chain state, certificates, compiled artifacts."""

    backend: BackendName = "embedded"
    """Ledger backend: ``embedded`` (in-process py-evm), ``anvil`` (local node) or ``rpc``."""

    rpc_url: str | None = None
    """JSON-RPC endpoint for the ``rpc`` backend (geth, Besu, Nethermind, a testnet)."""

    anvil_path: Path | None = None
    """The anvil binary; found in ``node_modules`` or on PATH when unset."""

    anvil_port: int = 0
    """Port for anvil; 0 picks a free one."""

    block_time: float | None = None
    """Seconds between anvil blocks; ``None`` mines each transaction at once."""

    confirmations: int = 0
    """Blocks on top of a receipt's block before a transaction counts as final."""

    receipt_timeout: float = 120.0
    """Seconds to wait for a receipt before raising ``TransactionTimeout``."""

    gas_margin: float = 1.2
    """Multiplier on estimated gas."""

    password: str | None = field(default=None, repr=False)
    """Keystore password (``PERVASIVE_PASSWORD``); asked at the prompt when unset."""

    broker: Literal["auto", "mosquitto", "embedded"] = "auto"
    """MQTT broker: mosquitto when installed (``auto``), or the embedded Python broker."""

    mqtt_host: str = "127.0.0.1"
    """Host the broker listens on."""

    mqtt_port: int = 0
    """Port of the broker's TLS listener; 0 picks a free one."""

    @property
    def data_dir(self) -> Path:
        """The data directory (alias of ``home``)."""
        return self.home

    def path(self, *parts: str) -> Path:
        """A path inside the data directory, creating its parent folders."""
        target = self.home.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


def _coerce(name: str, raw: Any, annotation: Any) -> Any:
    """Turn a string (env, flag) or TOML value into the field's type."""
    if raw is None:
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if isinstance(raw, str) and raw.lower() in ("", "none", "null"):
            return None
        return _coerce(name, raw, inner[0])
    if origin is Literal:
        if raw not in args:
            choices = ", ".join(map(str, args))
            raise ConfigError(f"setting {name!r} is {raw!r}; choose one of: {choices}")
        return raw
    try:
        if annotation is Path:
            return Path(raw).expanduser()
        if annotation is bool:
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
        if annotation in (int, float, str):
            return annotation(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"setting {name!r} = {raw!r} is not a valid {annotation.__name__}"
        ) from exc
    raise ConfigError(f"setting {name!r} has an unsupported type {annotation!r}")


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build settings from defaults, ``pervasive.toml``, ``PERVASIVE_*`` and flags.

    The file is ``config_file`` when given, else ``./pervasive.toml`` when present,
    else ``<home>/pervasive.toml``. Flags whose value is ``None`` are ignored, so a
    CLI can pass every option through unchanged.

    Example: ``load_settings({"backend": "anvil", "block_time": 1})``.
    """
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    hints = typing.get_type_hints(Settings)
    names = {f.name for f in dataclasses.fields(Settings)}
    unknown = set(flags) - names
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")

    env_values = {
        n: environ[ENV_PREFIX + n.upper()] for n in names if ENV_PREFIX + n.upper() in environ
    }
    home_hint = flags.get("home") or env_values.get("home") or Settings.home
    candidates = (
        [config_file] if config_file else [Path(CONFIG_FILE), Path(home_hint) / CONFIG_FILE]
    )
    file_values: dict[str, Any] = {}
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            try:
                file_values = tomllib.loads(candidate.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{candidate} is not valid TOML: {exc}") from exc
            break
        if config_file is not None:
            raise ConfigError(f"config file {config_file} does not exist")
    file_values = file_values.get("pervasive", file_values)
    bad = set(file_values) - names
    if bad:
        raise ConfigError(f"unknown setting(s) in config file: {', '.join(sorted(bad))}")

    merged: dict[str, Any] = {}
    for source in (file_values, env_values, flags):
        for name, raw in source.items():
            merged[name] = _coerce(name, raw, hints[name])
    settings = Settings(**merged)
    if settings.backend == "rpc" and not settings.rpc_url:
        raise ConfigError("backend 'rpc' needs an endpoint: set --rpc-url or PERVASIVE_RPC_URL")
    return settings
