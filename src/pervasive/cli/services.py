"""``pervasive broker run`` and ``pervasive shadow run|get``: the device layer's services.

The broker is mosquitto when installed (the platform writes its TLS, client-certificate
and per-identity ACL configuration) or the embedded Python broker; the shadow service
answers the AWS IoT Device Shadow MQTT API (paper 004 section 5.6) as ``svc:shadow``.
Both run in the foreground until Ctrl-C and print what they did when they stop.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from pervasive.cli.device import open_authority
from pervasive.cli.session import CliState, run_until_stopped, state_of
from pervasive.errors import ConfigError

if TYPE_CHECKING:
    from pervasive.pki import CertificateAuthority

__all__ = [
    "admitted_file",
    "await_admission",
    "broker_app",
    "get_shadow",
    "run_broker",
    "run_shadow",
    "shadow_app",
]

_WATCH_SECONDS = 0.25
"""How often ``broker run`` looks for certificates issued or revoked elsewhere."""

broker_app = typer.Typer(no_args_is_help=True, help="The MQTT broker devices connect to.")
shadow_app = typer.Typer(
    no_args_is_help=True, help="Device shadows (AWS IoT Device Shadow MQTT API)."
)

_PORT = Annotated[
    int | None, typer.Option(help="Broker TLS port (default: the settings' mqtt_port).")
]


@broker_app.command("run")
def run_broker(ctx: typer.Context, *, port: _PORT = None) -> None:
    """Start the broker with the platform CA's TLS and ACLs and keep it running.

    Only holders of an active certificate of this data directory's CA connect; each
    device publishes and subscribes its own topics only. Certificates issued or revoked
    meanwhile (``pervasive device register|revoke`` in another shell) take effect
    within a quarter of a second: the ACL is rewritten and the CRL reloaded.

    Example: ``pervasive broker run --port 8883``.
    """
    from dataclasses import replace

    from pervasive.messaging import create_broker

    state = state_of(ctx)
    settings = state.settings if port is None else replace(state.settings, mqtt_port=port)
    admitted = admitted_file(settings.home)
    ca = open_authority(state)

    async def go() -> None:
        broker = create_broker(settings, ca.broker_credentials(), ca.active_identities)
        async with broker:
            # the admitted list first: whoever starts on the line below waits on that file
            seen = _identity_state(ca)
            _write_admitted(admitted, seen[0])
            state.console.print(
                f"{type(broker).__name__} listening on {settings.mqtt_host}:{broker.port} "
                f"(TLS, client certificates of {escape(str(ca.directory))}); Ctrl-C stops it",
                highlight=False,
                soft_wrap=True,
            )
            while True:  # certificates issued or revoked by other processes
                await asyncio.sleep(_WATCH_SECONDS)
                if (current := _identity_state(ca)) != seen:
                    seen = current
                    broker.refresh()
                    await broker.settle()
                    _write_admitted(admitted, seen[0])

    try:
        run_until_stopped(go())
    finally:
        ca.close()
        admitted.unlink(missing_ok=True)
    state.console.print("broker stopped")


def admitted_file(home: Path) -> Path:
    """Where ``broker run`` lists the identities its ACL grants right now."""
    return home / "broker" / "admitted.json"


def _write_admitted(path: Path, identities: tuple[str, ...]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(list(identities)))
    partial.replace(path)


async def await_admission(home: Path, identity: str, *, timeout: float = 15.0) -> None:
    """Wait until the broker run from ``home`` grants ``identity`` its topics.

    A broker silently drops what an identity it does not know yet publishes or
    subscribes to; a certificate issued a moment ago is known at the broker's next look
    (``_WATCH_SECONDS``). Returns at once when no broker runs from ``home`` (one
    elsewhere is out of our sight). Raises :class:`ConfigError` at ``timeout``.

    Example: ``await await_admission(settings.home, "svc:shadow")``.
    """
    path = admitted_file(home)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while path.exists():
        try:
            if identity in json.loads(path.read_text()):
                return
        except (OSError, ValueError):
            pass  # replaced under our feet: read it again
        if loop.time() > deadline:
            raise ConfigError(
                f"the broker run from {home} has not admitted {identity!r} after {timeout:g}s; "
                "is its certificate revoked (`pervasive device list`)?"
            )
        await asyncio.sleep(_WATCH_SECONDS / 5)


def _identity_state(ca: CertificateAuthority) -> tuple[tuple[str, ...], int]:
    """What the broker's ACL and CRL depend on: active identities, the CRL's mtime."""
    crl = ca.directory / "crl.pem"
    return tuple(sorted(ca.active_identities())), crl.stat().st_mtime_ns if crl.exists() else 0


@shadow_app.command("run")
def run_shadow(
    ctx: typer.Context,
    *,
    port: Annotated[int, typer.Option(help="TLS port of a running broker.")],
) -> None:
    """Serve every thing's shadow over the broker at ``--port`` until Ctrl-C.

    Shadows persist in ``<home>/shadow.sqlite``: a restart loses no accepted update.

    Example: ``pervasive shadow run --port 8883``.
    """
    from pervasive.messaging import ClientOptions, MqttClient
    from pervasive.shadow import ShadowService, ShadowStore

    state = state_of(ctx)
    settings = state.settings
    ca = open_authority(state)
    credentials = ca.client_credentials("svc:shadow", settings.path("mqtt"))
    ca.close()
    store = ShadowStore.open(settings.path("shadow.sqlite"))
    service: ShadowService | None = None

    async def go() -> None:
        nonlocal service
        await await_admission(settings.home, "svc:shadow")
        options = ClientOptions(settings.mqtt_host, port, credentials)
        async with MqttClient(options) as client:
            service = ShadowService(client, store)
            state.console.print(
                f"shadow service on {settings.mqtt_host}:{port} as svc:shadow; Ctrl-C stops it",
                highlight=False,
                soft_wrap=True,
            )
            await service.run()

    try:
        run_until_stopped(go())
    finally:
        store.close()
    if service is not None:
        _report(state, service.accepted.total(), dict(service.rejections), service.duplicates)


def _report(state: CliState, accepted: int, rejections: dict[int, int], duplicates: int) -> None:
    refused = ", ".join(f"{code}: {count}" for code, count in sorted(rejections.items()))
    state.console.print(
        f"stopped: {accepted} requests accepted, rejected: {refused or 'none'}, "
        f"{duplicates} redelivered updates applied once",
        highlight=False,
    )


@shadow_app.command("get")
def get_shadow(
    ctx: typer.Context,
    thing: Annotated[str, typer.Argument(help="The thing (device id).")],
    *,
    name: Annotated[str | None, typer.Option(help="A named shadow (default: classic).")] = None,
) -> None:
    """Print a shadow's state, version and delta from the local shadow store.

    Example: ``pervasive shadow get lock-7 --name door``.
    """
    from pervasive.errors import NotFound
    from pervasive.shadow import ShadowStore
    from pervasive.shadow.document import compute_delta
    from pervasive.shadow.protocol import ShadowKey

    state = state_of(ctx)
    store = ShadowStore.open(state.settings.path("shadow.sqlite"))
    try:
        record = store.load(ShadowKey(thing, name))
    finally:
        store.close()
    label = thing if name is None else f"{thing}/{name}"
    if record is None or not record.exists:
        raise NotFound(f"no shadow {label!r}; a device or app creates it with an update")
    document = {
        "state": record.state_body(),
        "delta": compute_delta(record.desired, record.reported),
        "version": record.version,
        "timestamp": int(record.updated_at),
    }
    state.console.print_json(json.dumps(document))
