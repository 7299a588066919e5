"""``pervasive broker run`` and ``pervasive shadow run|get``: the device layer's services.

The broker is mosquitto when installed (the platform writes its TLS, client-certificate
and per-identity ACL configuration) or the embedded Python broker; the shadow service
answers the AWS IoT Device Shadow MQTT API (paper 004 section 5.6) as ``svc:shadow``.
Both run in the foreground until Ctrl-C and print what they did when they stop.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.markup import escape

from pervasive.cli.session import CliState, run_until_stopped, state_of

__all__ = ["broker_app", "get_shadow", "run_broker", "run_shadow", "shadow_app"]

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

    Ready means our broker answers: a TLS handshake on the port presents the platform
    CA's broker certificate, so a port taken by another process fails the command with
    one line (exit 1) and "listening" is never printed. If mosquitto dies later (killed,
    crashed), the command says so in one line and exits 1 at once; it does not restart
    mosquitto: a service manager (systemd ``Restart=on-failure``) restarts the command.

    Example: ``pervasive broker run --port 8883``.
    """
    from dataclasses import replace

    from pervasive.messaging import MosquittoBroker
    from pervasive.platform import Platform

    state = state_of(ctx)
    settings = state.settings if port is None else replace(state.settings, mqtt_port=port)

    async def go() -> None:
        # the platform's broker keeps <home>/broker/admitted.json in step with the CA
        # (certificates issued or revoked by other processes take effect at its next
        # look); the list is written before the line below, which others wait for
        async with Platform(settings, password=state.password, shared=True) as platform:
            broker = await platform.broker()
            state.console.print(
                f"{type(broker).__name__} listening on {settings.mqtt_host}:{broker.port} "
                f"(TLS, client certificates of {escape(str(platform.pki_directory))}); "
                "Ctrl-C stops it",
                highlight=False,
                soft_wrap=True,
            )
            if isinstance(broker, MosquittoBroker):
                await broker.supervise()  # raises, in one line, when mosquitto dies
            else:
                await asyncio.Event().wait()

    run_until_stopped(go())
    state.console.print("broker stopped")


@shadow_app.command("run")
def run_shadow(
    ctx: typer.Context,
    *,
    port: Annotated[int, typer.Option(help="TLS port of a running broker.")],
) -> None:
    """Serve every thing's shadow over the broker at ``--port`` until Ctrl-C.

    Shadows persist in ``<home>/shadow.sqlite``: a restart loses no accepted update.
    The ``[shadow]`` settings bound requests, the ``[mqtt]`` settings the client.

    Example: ``pervasive shadow run --port 8883``.
    """
    from pervasive.messaging import MqttClient, await_admission
    from pervasive.platform import SHADOW_IDENTITY
    from pervasive.shadow import ShadowCore, ShadowService, ShadowStore

    state = state_of(ctx)
    settings = state.settings
    store = ShadowStore.open(settings.path("shadow.sqlite"))
    service: ShadowService | None = None

    async def go() -> None:
        nonlocal service
        async with state.platform() as platform:
            options = platform.client_options(SHADOW_IDENTITY, port=port, manual_ack=True)
            limits = platform.shadow_limits()
        await await_admission(settings.home, SHADOW_IDENTITY)
        async with MqttClient(options) as client:
            service = ShadowService(client, store, ShadowCore(limits))
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
        f"{duplicates} repeated requests answered from the store",
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
