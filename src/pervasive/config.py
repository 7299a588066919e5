"""Settings: one place that reads ``pervasive.toml``, ``PERVASIVE_*`` variables and flags.

Precedence, lowest to highest: built-in defaults, the file, the environment, flags.
No other module reads the environment; the composition root (the CLI, a test
fixture) builds one :class:`Settings` and hands it down.

Top-level settings are plain keys (``backend = "anvil"``, ``PERVASIVE_BACKEND``,
``{"backend": ...}``). The tunables of the intermediate node, the MQTT client and the
shadow service are sections: ``[node]``, ``[mqtt]`` and ``[shadow]`` in the file,
``PERVASIVE_NODE_GAP_TIMEOUT`` in the environment, ``{"node.gap_timeout": 2.0}`` as a
flag. ``NodeSettings`` and ``ShadowSettings`` are the options the intermediate node and
the shadow service take; ``MqttSettings`` is the tunable part of ``ClientOptions``,
which the composition root completes with the broker's address and the credentials.

Example::

    settings = load_settings(flags={"backend": "anvil", "node.gap_timeout": 2.0})
    settings.data_dir            # Path('.pervasive')
    settings.node.gap_timeout    # 2.0
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pervasive.errors import ConfigError

__all__ = [
    "BACKENDS",
    "CONFIG_FILE",
    "ENV_PREFIX",
    "SECTIONS",
    "BackendName",
    "GatewaySettings",
    "MqttSettings",
    "NodeSettings",
    "OracleSettings",
    "ServiceSettings",
    "Settings",
    "ShadowSettings",
    "WebSettings",
    "load_settings",
    "settings_table",
]

BackendName = Literal["embedded", "anvil", "rpc"]
BACKENDS: tuple[BackendName, ...] = ("embedded", "anvil", "rpc")
ENV_PREFIX = "PERVASIVE_"
CONFIG_FILE = "pervasive.toml"


def _require(condition: bool, setting: str, value: object, what: str) -> None:
    if not condition:
        raise ConfigError(f"setting {setting} = {value!r} is out of range: it {what}")


@dataclass(frozen=True)
class NodeSettings:
    """``[node]``: timing and batching of an intermediate node (its options)."""

    gap_timeout: float = 5.0
    """Seconds a missing sensor message is waited for before it is reported as a gap."""
    protocol_timeout: float = 5.0
    """Seconds without an answer from a peer before a retry (then a timeout dispute)."""
    max_retries: int = 2
    """Retries before a silent peer leads to a timeout dispute."""
    takeover_after: float = 10.0
    """Seconds a non-designated node waits for the update on-chain before sending it."""
    tick_interval: float = 0.05
    """Seconds between timer checks."""
    batch_size: int = 2048
    """Most sensor messages verified in one go."""
    batch_wait: float = 0.002
    """Seconds a busy sensor stream is left to accumulate before it is verified."""
    compact_wait: float | None = None
    """Fast protocol: seconds the leader holds the previous proof for the next round's
    bundle (unset: the protocol timeout)."""
    max_in_flight: int = 8
    """Protocol publishes awaiting their PUBACK at once."""

    def __post_init__(self) -> None:
        for name in ("gap_timeout", "protocol_timeout", "takeover_after", "tick_interval"):
            value = getattr(self, name)
            _require(value > 0, f"node.{name}", value, "must be more than 0 seconds")
        _require(self.max_retries >= 0, "node.max_retries", self.max_retries, "must be >= 0")
        _require(self.batch_size >= 1, "node.batch_size", self.batch_size, "must be >= 1")
        _require(self.batch_wait >= 0, "node.batch_wait", self.batch_wait, "must be >= 0")
        if self.compact_wait is not None:
            _require(self.compact_wait >= 0, "node.compact_wait", self.compact_wait,
                     "must be >= 0 (or left unset for the protocol timeout)")  # fmt: skip
        _require(self.max_in_flight >= 1, "node.max_in_flight", self.max_in_flight,
                 "must be >= 1")  # fmt: skip


@dataclass(frozen=True)
class MqttSettings:
    """``[mqtt]``: how every MQTT client of the platform behaves (``ClientOptions``).

    The broker's own address is the top-level ``broker``, ``mqtt_host``, ``mqtt_port``.
    """

    keepalive: int = 30
    """Seconds between PINGREQs; a dead connection is noticed within 1.5x this."""
    reconnect_min: float = 0.05
    """First reconnect delay in seconds; doubles per failed attempt."""
    reconnect_max: float = 5.0
    """Longest reconnect delay in seconds."""
    ack_timeout: float = 10.0
    """Seconds to wait for a PUBACK or SUBACK before treating the connection as dead."""
    check_access: bool = True
    """Refuse publishes/subscriptions the access policy forbids before sending them."""
    max_inflight: int = 1
    """QoS 1 publishes awaiting their PUBACK at once (keep 1 with the embedded broker)."""
    max_message_bytes: int = 1024 * 1024
    """Largest MQTT packet a broker accepts and a client sends or accepts (refused beyond)."""
    max_queued_messages: int = 100_000
    """QoS 1 messages a broker keeps for one client (offline or slow); newer ones dropped."""
    max_queued_bytes: int = 64 * 1024 * 1024
    """Payload bytes a broker keeps queued for one client; newer messages dropped beyond."""
    connect_timeout: float = 10.0
    """Seconds a new connection has to send CONNECT before the broker closes it."""
    autosave_interval: int = 5
    """Seconds between mosquitto's saves; an outbox resends what was acked less long ago."""

    def __post_init__(self) -> None:
        _require(0 < self.keepalive <= 65535, "mqtt.keepalive", self.keepalive,
                 "must be 1 to 65535 seconds (MQTT's two-byte field)")  # fmt: skip
        _require(self.reconnect_min > 0, "mqtt.reconnect_min", self.reconnect_min,
                 "must be more than 0 seconds")  # fmt: skip
        least = f"must be >= mqtt.reconnect_min ({self.reconnect_min})"
        _require(self.reconnect_max >= self.reconnect_min, "mqtt.reconnect_max",
                 self.reconnect_max, least)  # fmt: skip
        _require(self.ack_timeout > 0, "mqtt.ack_timeout", self.ack_timeout,
                 "must be more than 0 seconds")  # fmt: skip
        _require(1 <= self.max_inflight <= 65535, "mqtt.max_inflight", self.max_inflight,
                 "must be 1 to 65535 (MQTT packet ids)")  # fmt: skip
        _require(1024 <= self.max_message_bytes <= 268_435_455, "mqtt.max_message_bytes",
                 self.max_message_bytes, "must be 1024 to 268435455 (MQTT's limit)")  # fmt: skip
        _require(self.max_queued_messages >= 1, "mqtt.max_queued_messages",
                 self.max_queued_messages, "must be at least 1")  # fmt: skip
        _require(self.max_queued_bytes >= self.max_message_bytes, "mqtt.max_queued_bytes",
                 self.max_queued_bytes, "must be >= mqtt.max_message_bytes")  # fmt: skip
        _require(self.connect_timeout > 0, "mqtt.connect_timeout", self.connect_timeout,
                 "must be more than 0 seconds")  # fmt: skip
        _require(self.autosave_interval >= 1, "mqtt.autosave_interval",
                 self.autosave_interval, "must be at least 1 second")  # fmt: skip


@dataclass(frozen=True)
class ShadowSettings:
    """``[shadow]``: the bounds the shadow service enforces (its limits).

    Defaults follow the AWS IoT Device Shadow quotas.
    """

    max_state_bytes: int = 8192
    """Compact JSON size of the stored ``desired`` + ``reported`` sections (413 beyond)."""
    max_depth: int = 6
    """Levels of objects/arrays in a ``desired`` or ``reported`` section, itself included."""
    max_client_token_bytes: int = 64
    """UTF-8 bytes of a ``clientToken`` (400 beyond)."""
    max_payload_bytes: int = 128 * 1024
    """Raw MQTT payload of a request; larger ones are refused before parsing (413)."""
    max_thing_name_bytes: int = 128
    """Thing names: ``[a-zA-Z0-9:_-]``, 1 to this many bytes."""
    max_shadow_name_bytes: int = 64
    """Named-shadow names: ``[a-zA-Z0-9:_-]``, 1 to this many bytes."""
    requests_per_second: float = 20.0
    """Sustained requests per thing (all shadows and operations together); 429 beyond."""
    burst: int = 20
    """Requests a thing may send at once before the rate applies."""
    max_in_flight: int = 10
    """Requests of one connection to one shadow not yet answered; 429 beyond (AWS)."""
    version_retention_seconds: float = 48 * 3600
    """A shadow recreated within this time after deletion continues the old version."""

    def __post_init__(self) -> None:
        _require(self.requests_per_second > 0, "shadow.requests_per_second",
                 self.requests_per_second, "must be more than 0")  # fmt: skip
        _require(self.burst >= 1, "shadow.burst", self.burst, "must be >= 1")
        _require(self.max_in_flight >= 1, "shadow.max_in_flight", self.max_in_flight,
                 "must be >= 1")  # fmt: skip
        _require(self.max_depth >= 1, "shadow.max_depth", self.max_depth, "must be >= 1")
        _require(self.max_state_bytes >= 2, "shadow.max_state_bytes", self.max_state_bytes,
                 "must be >= 2 (the size of {})")  # fmt: skip
        for name in ("max_client_token_bytes", "max_payload_bytes", "max_thing_name_bytes",
                     "max_shadow_name_bytes"):  # fmt: skip
            value = getattr(self, name)
            _require(value >= 1, f"shadow.{name}", value, "must be >= 1")
        _require(self.version_retention_seconds >= 0, "shadow.version_retention_seconds",
                 self.version_retention_seconds, "must be >= 0")  # fmt: skip


@dataclass(frozen=True)
class GatewaySettings:
    """``[gateway]``: the devices' JSON-RPC gateway (paper 004, section 4.6)."""

    host: str = "127.0.0.1"
    """Interface the gateway's HTTPS listener binds."""
    port: int = 0
    """Port of the gateway's HTTPS listener; 0 picks a free one."""
    requests_per_second: float = 200.0
    """Sustained JSON-RPC calls per device (a batch counts each call); error -32005 beyond."""
    burst: int = 400
    """Calls a device may send at once before the rate applies."""
    max_body_bytes: int = 256 * 1024
    """Largest request body (a batch included); larger ones are refused before parsing."""
    max_batch: int = 100
    """Calls in one JSON-RPC batch."""

    def __post_init__(self) -> None:
        _require(0 <= self.port <= 65535, "gateway.port", self.port, "must be 0 to 65535")
        _require(self.requests_per_second > 0, "gateway.requests_per_second",
                 self.requests_per_second, "must be more than 0")  # fmt: skip
        _require(self.burst >= 1, "gateway.burst", self.burst, "must be >= 1")
        _require(self.max_body_bytes >= 64, "gateway.max_body_bytes", self.max_body_bytes,
                 "must be >= 64")  # fmt: skip
        _require(self.max_batch >= 1, "gateway.max_batch", self.max_batch, "must be >= 1")


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: the sellers' and buyers' web app and the live dashboard (paper 004, 5.2)."""

    host: str = "127.0.0.1"
    """Interface the web app binds."""
    port: int = 8000
    """Port of the web app; 0 picks a free one."""
    session_minutes: float = 30.0
    """A signed-in session ends after this many idle minutes (its unlocked key is dropped)."""
    dashboard_interval: float = 0.5
    """Seconds between the dashboard's looks at the chain for new events."""

    def __post_init__(self) -> None:
        _require(0 <= self.port <= 65535, "web.port", self.port, "must be 0 to 65535")
        _require(self.session_minutes > 0, "web.session_minutes", self.session_minutes,
                 "must be more than 0")  # fmt: skip
        _require(self.dashboard_interval > 0, "web.dashboard_interval",
                 self.dashboard_interval, "must be more than 0")  # fmt: skip


@dataclass(frozen=True)
class OracleSettings:
    """``[oracle]``: the oracle committee of pervasive contracts (paper 001, section 4)."""

    timeout: float = 30.0
    """Seconds a query may wait for its answer before it is retried (or times out)."""
    max_attempts: int = 3
    """Attempts of a query (the first included) before it ends in a timeout event."""
    fetch_timeout: float = 5.0
    """Seconds an oracle node waits for a source (a URL, a device value, a CID)."""
    max_response_bytes: int = 64 * 1024
    """Largest source response an oracle node reads; a larger one is a failed fetch."""
    poll_interval: float = 0.01
    """Seconds between an oracle node's looks at the chain for new queries."""
    takeover_after: float = 2.0
    """Seconds before a stand-in node sends an answer the designated node has not sent."""

    def __post_init__(self) -> None:
        _require(self.timeout > 0, "oracle.timeout", self.timeout, "must be more than 0")
        _require(self.max_attempts >= 1, "oracle.max_attempts", self.max_attempts,
                 "must be >= 1")  # fmt: skip
        _require(self.fetch_timeout > 0, "oracle.fetch_timeout", self.fetch_timeout,
                 "must be more than 0")  # fmt: skip
        _require(self.max_response_bytes >= 64, "oracle.max_response_bytes",
                 self.max_response_bytes, "must be >= 64")  # fmt: skip
        _require(self.poll_interval > 0, "oracle.poll_interval", self.poll_interval,
                 "must be more than 0")  # fmt: skip
        _require(self.takeover_after > 0, "oracle.takeover_after", self.takeover_after,
                 "must be more than 0")  # fmt: skip


@dataclass(frozen=True)
class ServiceSettings:
    """``[service]``: pervasive-contract services (paper 001, section 3.1)."""

    host: str = "127.0.0.1"
    """Interface of a service's REST listener (HTTPS with device certificates)."""
    port: int = 0
    """Port of a service's REST listener; 0 picks a free one."""
    max_body_bytes: int = 16 * 1024
    """Largest REST request body a service reads."""
    poll_interval: float = 0.05
    """Seconds between a service's looks at the chain for its contract's events."""
    event_confirmations: int = 0
    """Blocks on top of an event before it is mapped and published (reorgs retract)."""

    def __post_init__(self) -> None:
        _require(0 <= self.port <= 65535, "service.port", self.port, "must be 0 to 65535")
        _require(self.max_body_bytes >= 64, "service.max_body_bytes", self.max_body_bytes,
                 "must be >= 64")  # fmt: skip
        _require(self.poll_interval > 0, "service.poll_interval", self.poll_interval,
                 "must be more than 0")  # fmt: skip
        _require(self.event_confirmations >= 0, "service.event_confirmations",
                 self.event_confirmations, "must be >= 0")  # fmt: skip


SECTIONS: dict[
    str,
    type[
        NodeSettings
        | MqttSettings
        | ShadowSettings
        | GatewaySettings
        | WebSettings
        | OracleSettings
        | ServiceSettings
    ],
] = {
    "node": NodeSettings,
    "mqtt": MqttSettings,
    "shadow": ShadowSettings,
    "gateway": GatewaySettings,
    "web": WebSettings,
    "oracle": OracleSettings,
    "service": ServiceSettings,
}
"""The sections of ``pervasive.toml`` and the field of :class:`Settings` each fills."""


@dataclass(frozen=True)
class Settings:
    """Everything a pervasive process needs to know before it starts."""

    home: Path = Path(".pervasive")
    """Data directory: keystore, SQLite state, chain state, certificates, compiled artifacts."""

    backend: BackendName = "embedded"
    """Ledger backend: ``embedded`` (in-process py-evm), ``anvil`` (local node) or ``rpc``."""

    rpc_url: str | None = None
    """JSON-RPC endpoint for the ``rpc`` backend (geth, Besu, Nethermind, a testnet)."""

    rpc_timeout: float = 10.0
    """Seconds a JSON-RPC endpoint has to answer its first request before it counts as down."""

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

    node: NodeSettings = field(default_factory=NodeSettings)
    """``[node]``: intermediate-node timing and batching."""

    mqtt: MqttSettings = field(default_factory=MqttSettings)
    """``[mqtt]``: MQTT client behaviour (keepalive, reconnects, acknowledgements)."""

    shadow: ShadowSettings = field(default_factory=ShadowSettings)
    """``[shadow]``: shadow service limits."""

    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    """``[gateway]``: the devices' JSON-RPC gateway (listener, rate limit, sizes)."""

    web: WebSettings = field(default_factory=WebSettings)
    """``[web]``: the web app and dashboard (listener, session length)."""

    oracle: OracleSettings = field(default_factory=OracleSettings)
    """``[oracle]``: oracle queries and nodes (timeouts, attempts, fetch limits)."""

    service: ServiceSettings = field(default_factory=ServiceSettings)
    """``[service]``: pervasive-contract services (REST listener, event mapping)."""

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


def _read_file(candidates: list[Path], explicit: bool) -> dict[str, Any]:
    for candidate in candidates:
        if candidate.is_file():
            try:
                values = tomllib.loads(candidate.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{candidate} is not valid TOML: {exc}") from exc
            # top-level settings may sit in a [pervasive] table; sections beside it
            nested = values.pop("pervasive", {})
            if not isinstance(nested, dict):
                raise ConfigError(f"{candidate}: 'pervasive' must be a table ([pervasive])")
            return {**values, **nested}
        if explicit:
            raise ConfigError(f"config file {candidate} does not exist")
    return {}


def _split(source: str, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Top-level values and ``section.field`` values of one source, unknown names refused."""
    names = {f.name for f in dataclasses.fields(Settings)} - set(SECTIONS)
    top: dict[str, Any] = {}
    sectioned: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in values.items():
        if key in SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"{source}: {key!r} is a section; write its settings as [{key}] "
                    f"keys or {key}.<setting>"
                )
            sectioned.update({f"{key}.{k}": v for k, v in value.items()})
        elif "." in key:
            sectioned[key] = value
        elif key in names:
            top[key] = value
        else:
            unknown.append(key)
    for key in sectioned:
        section, _, name = key.partition(".")
        if section not in SECTIONS or name not in _field_names(SECTIONS[section]):
            unknown.append(key)
    if unknown:
        where = "" if source == "flags" else f" in {source}"
        raise ConfigError(
            f"unknown setting(s){where}: {', '.join(sorted(unknown))} "
            "(`pervasive config` lists every setting)"
        )
    return top, sectioned


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _field_names(Settings):
        if name in SECTIONS:
            for field_name in _field_names(SECTIONS[name]):
                key = f"{ENV_PREFIX}{name.upper()}_{field_name.upper()}"
                if key in environ:
                    values[f"{name}.{field_name}"] = environ[key]
        elif ENV_PREFIX + name.upper() in environ:
            values[name] = environ[ENV_PREFIX + name.upper()]
    return values


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build settings from defaults, ``pervasive.toml``, ``PERVASIVE_*`` and flags.

    The file is ``config_file`` when given, else ``./pervasive.toml`` when present,
    else ``<home>/pervasive.toml``. Flags whose value is ``None`` are ignored, so a
    CLI can pass every option through unchanged. Section settings are written
    ``section.name`` as flags and ``PERVASIVE_SECTION_NAME`` in the environment.

    Example: ``load_settings({"backend": "anvil", "mqtt.keepalive": 60})``.
    """
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    flag_top, flag_sections = _split("flags", flags)
    env_top, env_sections = _split("environment", _from_environment(environ))
    home_hint = flag_top.get("home") or env_top.get("home") or Settings.home
    explicit = config_file is not None
    candidates = (
        [config_file] if config_file else [Path(CONFIG_FILE), Path(home_hint) / CONFIG_FILE]
    )
    file_top, file_sections = _split("config file", _read_file(candidates, explicit))

    hints = typing.get_type_hints(Settings)
    merged: dict[str, Any] = {}
    for source in (file_top, env_top, flag_top):
        for name, raw in source.items():
            merged[name] = _coerce(name, raw, hints[name])
    for section, cls in SECTIONS.items():
        section_hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for source in (file_sections, env_sections, flag_sections):
            for key, raw in source.items():
                prefix, _, name = key.partition(".")
                if prefix == section:
                    values[name] = _coerce(key, raw, section_hints[name])
        merged[section] = cls(**values)
    settings = Settings(**merged)
    if settings.backend == "rpc" and not settings.rpc_url:
        raise ConfigError("backend 'rpc' needs an endpoint: set --rpc-url or PERVASIVE_RPC_URL")
    return settings


def settings_table(settings: Settings) -> list[tuple[str, str, str]]:
    """Every setting as ``(name, value, description)``, sections as ``section.name``.

    The password is shown as ``(set)`` or ``(unset)``, never its value.

    Example: ``dict((n, v) for n, v, _ in settings_table(s))["node.gap_timeout"]  # '5.0'``.
    """
    rows: list[tuple[str, str, str]] = []
    docs = _attribute_docs(Settings)
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if f.name in SECTIONS:
            section_docs = _attribute_docs(SECTIONS[f.name])
            for inner in dataclasses.fields(value):
                rows.append((f"{f.name}.{inner.name}", _show(getattr(value, inner.name)),
                             section_docs.get(inner.name, "")))  # fmt: skip
        elif f.name == "password":
            rows.append((f.name, "(set)" if value else "(unset)", docs.get(f.name, "")))
        else:
            rows.append((f.name, _show(value), docs.get(f.name, "")))
    return rows


def _show(value: object) -> str:
    return "(unset)" if value is None else str(value)


def _attribute_docs(cls: type) -> dict[str, str]:
    """The first line of each field's attribute docstring (read from the source)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for target, doc in itertools.pairwise(body):
        if (
            isinstance(target, ast.AnnAssign)
            and isinstance(target.target, ast.Name)
            and isinstance(doc, ast.Expr)
            and isinstance(doc.value, ast.Constant)
            and isinstance(doc.value.value, str)
        ):
            first = doc.value.value.split("\n\n")[0].replace("``", "")
            docs[target.target.id] = " ".join(first.split())
    return docs
