"""``pervasive device register|revoke|list|cert|simulate``.

A device has two identities: an X.509 certificate from the platform CA (who it is on
the broker, paper 004 section 5.4) and, per sensor, a secp256k1 signing key whose
declaration ``d_s`` is registered on-chain (paper 002), so anyone can check its
readings. ``register`` makes both; ``revoke`` revokes the certificate and deactivates
the sensors on-chain. Files live in ``<home>/devices/<id>/``; the CA key needs the
platform password (``PERVASIVE_PASSWORD`` or the prompt).

``register`` checks every argument before it writes anything, then goes step by step
so that a failure leaves nothing half done and the same command resumes: the sensor
key (kept for the retry), the on-chain declaration (skipped when the chain already
holds it with that key), and last the certificate and its files (issued only once the
declaration is on-chain; revoked again if its files cannot be written). The sensor key
is sealed under the platform password unless ``--unattended`` keeps it plain for a
device that boots with nobody to type a password (mode 0600 in a 0700 folder).

Example::

    pervasive device register container-1 --dev-account 1
    pervasive device register thermo-1 --sensor thermo --type temperature \
        --field celsius:int64 --field time:uint64 --unattended
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pervasive.cli.session import CliState, run, session, state_of
from pervasive.domain.identifiers import validate_device_id
from pervasive.errors import InvalidInput, UserError

if TYPE_CHECKING:
    from pervasive.contracts import Registry
    from pervasive.crypto import PrivateKey
    from pervasive.devices import DeviceFolder, SensorSpec
    from pervasive.domain import SensorField
    from pervasive.pki import CertificateAuthority

__all__ = [
    "Account",
    "DevAccount",
    "RegistrationInterrupted",
    "app",
    "cert",
    "list_devices",
    "refusals",
    "register",
    "revoke",
    "simulate",
]

refusals: Counter[str] = Counter()
"""Refused device commands of this process by reason (``device_id``, ``sensor``, ``chain``...)."""


class RegistrationInterrupted(UserError):
    """``device register`` stopped part-way (the chain failed): what is done, how to resume."""


app = typer.Typer(
    help="Device identities (certificate + on-chain sensor keys) and the device simulator.",
    no_args_is_help=True,
)

Account = Annotated[str | None, typer.Option("--account", help="Sign with this keystore account.")]
DevAccount = Annotated[
    int | None,
    typer.Option("--dev-account", help="Sign with development account N (embedded/anvil)."),
]


def _folder(state: CliState, device_id: str, *, password: str | None = None) -> DeviceFolder:
    from pervasive.devices import DeviceFolder

    return DeviceFolder(state.settings.path("devices", _device_id(device_id)), password=password)


def _device_id(device_id: str) -> str:
    """The device id, checked by the one rule (before any path is built from it)."""
    try:
        return validate_device_id(device_id)
    except InvalidInput:
        refusals["device_id"] += 1
        raise


def _sensor_id(device_id: str, sensor: str) -> str:
    return f"{device_id}.{sensor}"


def _spec(sensor: str, sensor_type: str | None, fields: list[str] | None) -> SensorSpec:
    from pervasive.devices import SensorSpec
    from pervasive.devices.simulator import LOCATION_SENSOR

    if sensor_type is None and not fields:
        return SensorSpec(sensor, LOCATION_SENSOR.sensor_type, LOCATION_SENSOR.fields)
    if sensor_type is None or not fields:
        raise InvalidInput("give both --type and at least one --field, or neither")
    pairs = []
    for text in fields:
        name, sep, kind = text.partition(":")
        if not sep:
            raise InvalidInput(f"field {text!r} must be written name:type, e.g. celsius:int64")
        pairs.append((name.strip(), kind.strip()))
    return SensorSpec(sensor, sensor_type, tuple(pairs))


@app.command("register")
def register(
    ctx: typer.Context,
    *,
    device_id: Annotated[str, typer.Argument(help="Device id = certificate CN = thing name.")],
    sensor: Annotated[str, typer.Option(help="Name of the device's sensor.")] = "location",
    sensor_type: Annotated[
        str | None, typer.Option("--type", help="Sensor type c_s (default: location).")
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option("--field", help="A declared variable name:type.")
    ] = None,
    unattended: Annotated[
        bool,
        typer.Option(
            help="Keep the sensor key plain (mode 0600) for a device that boots unattended; "
            "by default it is encrypted with the platform password."
        ),
    ] = False,
    account: Account = None,
    dev_account: DevAccount = None,
) -> None:
    """Register the sensor key on-chain, then issue the device certificate; resumable.

    Example: ``pervasive device register container-1 --dev-account 1``.
    """
    from pervasive.crypto import generate_private_key
    from pervasive.domain import SensorField
    from pervasive.pki import CertificateAuthority

    state = state_of(ctx)
    _device_id(device_id)  # first: the id becomes a folder, a CN and a thing name
    try:
        spec = _spec(sensor, sensor_type, field)
        sensor_fields = [SensorField.parse(f"{n}:{t}") for n, t in spec.fields]
    except InvalidInput:
        refusals["sensor"] += 1
        raise
    sensor_id = _sensor_id(device_id, sensor)
    password = state.password()  # asked once: it opens the CA and seals the sensor key
    # a wrong platform password stops here, before any write
    ca = CertificateAuthority.open(state.settings.path("pki", "ca.cert.pem").parent, password)
    try:
        folder = _folder(state, device_id, password=None if unattended else password)
        existed = folder.key_path(sensor).exists()  # a retry reuses the key of the first run
        key = folder.signing_key(sensor, create=False) if existed else generate_private_key()
        declaration = spec.declaration(key.public_key)

        async def go() -> str | None:
            async with session(state) as s:
                registry = await s.registry(s.signer(account, dev_account))
                if await _declared(registry, sensor_id, key, spec, sensor_fields):
                    return None
                if not existed:  # on disk before the declaration leaves: a retry finds it
                    folder.store_signing_key(sensor, key)
                receipt = await registry.add_sensor(
                    sensor_id, key.public_key.to_bytes(), spec.sensor_type, sensor_fields
                )
                return receipt.transaction_hash

        try:
            tx = run(go())
        except InvalidInput:
            raise  # a refusal (sensor id taken, deactivated): nothing was written or sent
        except UserError as exc:
            refusals["chain"] += 1
            raise RegistrationInterrupted(
                f"{device_id} is not registered, no certificate was issued ({exc}); "
                f"fix that and run the same command again (it resumes with the same sensor key)"
            ) from exc
        serial = _issue_credentials(ca, device_id, folder)
    finally:
        ca.close()
    chain = f"transaction {tx}" if tx else "already on-chain"
    certificate = f"certificate {serial}" if serial else "certificate unchanged"
    state.console.print(
        f"registered device [bold]{device_id}[/bold]: {certificate} in {folder.path}; "
        f"sensor {sensor_id} signs as {declaration.address} ({chain})"
    )


async def _declared(
    registry: Registry,
    sensor_id: str,
    key: PrivateKey,
    spec: SensorSpec,
    fields: list[SensorField],
) -> bool:
    """Whether the chain already holds this declaration (a resumed registration).

    Refuses (``InvalidInput``) a sensor id taken by another key or declaration, or
    deactivated (its device was revoked): nothing has been sent then.
    """
    if not await registry.has_sensor(sensor_id):
        return False
    current = await registry.get_sensor(sensor_id)
    if current.public_key != key.public_key.to_bytes():
        refusals["sensor_taken"] += 1
        raise InvalidInput(
            f"sensor {sensor_id} is registered on-chain with another key: "
            "register the device under another id (or another --sensor name)"
        )
    if current.sensor_type != spec.sensor_type or tuple(current.fields) != tuple(fields):
        refusals["sensor_taken"] += 1
        raise InvalidInput(
            f"sensor {sensor_id} is registered on-chain as {current.sensor_type!r} with other "
            "fields: repeat the command with the --type and --field it was registered with"
        )
    if not current.active:
        refusals["sensor_deactivated"] += 1
        raise InvalidInput(
            f"sensor {sensor_id} was deactivated (its device was revoked): "
            "register the device under a new id"
        )
    return True


def _issue_credentials(
    ca: CertificateAuthority, device_id: str, folder: DeviceFolder
) -> str | None:
    """Issue and write the certificate unless the folder holds the active one already.

    A certificate that is active but whose files are missing or stale (an earlier run
    stopped) is rotated; one whose files cannot be written is revoked again, so a
    retry starts from no active certificate. Returns the new serial, or ``None``.
    """
    if ca.credentials_complete(device_id, folder.path):
        return None
    if ca.active_certificate(device_id) is not None:
        issued = ca.rotate(device_id)
    else:
        issued = ca.issue_device(device_id)
    try:
        ca.write_credentials(issued, folder.path)
    except OSError as exc:
        ca.revoke(issued.record.serial)
        raise RegistrationInterrupted(
            f"cannot write the credentials of {device_id} in {folder.path} "
            f"({exc.strerror or exc}); the certificate was revoked again: "
            "fix that and run the same command again"
        ) from exc
    return issued.record.serial_hex


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    device_id: str,
    account: Account = None,
    dev_account: DevAccount = None,
) -> None:
    """Revoke the device's certificate (the broker refuses it) and deactivate its sensors.

    Example: ``pervasive device revoke container-1``.
    """
    state = state_of(ctx)
    folder = _folder(state, device_id)
    ca = state.authority()
    try:
        records = ca.revoke_identity(device_id)
    finally:
        ca.close()

    async def go() -> list[str]:
        done = []
        async with session(state) as s:
            registry = await s.registry(s.signer(account, dev_account))
            for sensor in folder.sensors():
                sensor_id = _sensor_id(device_id, sensor)
                if (
                    await registry.has_sensor(sensor_id)
                    and (await registry.get_sensor(sensor_id)).active
                ):
                    await registry.deactivate_sensor(sensor_id)
                    done.append(sensor_id)
        return done

    deactivated = run(go())
    state.console.print(
        f"revoked {len(records)} certificate(s) of [bold]{device_id}[/bold]; "
        f"deactivated sensors: {', '.join(deactivated) or 'none'}"
    )


@app.command("list")
def list_devices(ctx: typer.Context) -> None:
    """List device certificates and their status. Example: ``pervasive device list``."""
    from pervasive.pki import CertificateKind

    state = state_of(ctx)
    ca = state.authority()
    try:
        records = [r for r in ca.certificates() if r.kind is CertificateKind.DEVICE]
    finally:
        ca.close()
    now = datetime.now(UTC)
    table = Table(title="Devices")
    for column in ("device", "serial", "status", "expires", "sensors"):
        table.add_column(column)
    for record in records:
        sensors = ", ".join(_folder(state, record.common_name).sensors())
        table.add_row(record.common_name, record.serial_hex, record.status(now).value,
                      record.not_after.date().isoformat(), sensors)  # fmt: skip
    state.console.print(table)


@app.command("cert")
def cert(
    ctx: typer.Context,
    device_id: str,
    rotate: Annotated[bool, typer.Option(help="Issue a new certificate, revoke the old.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also copy cert.pem, key.pem and ca.pem here.")
    ] = None,
) -> None:
    """Show (or rotate) the device's certificate.

    Example: ``pervasive device cert container-1 --rotate``.
    """
    state = state_of(ctx)
    folder = _folder(state, device_id)
    ca = state.authority()
    try:
        if rotate:
            ca.write_credentials(ca.rotate(device_id), folder.path)
        active = [r for r in ca.certificates(include_revoked=False) if r.common_name == device_id]
        if not active:
            raise InvalidInput(f"{device_id!r} has no unrevoked certificate: register it first")
        record = active[-1]
        if out is not None:
            issued_files = folder.credentials()
            out.mkdir(parents=True, exist_ok=True)
            for source in (issued_files.cert_file, issued_files.key_file, issued_files.ca_file):
                target = out / source.name
                target.write_bytes(source.read_bytes())
                target.chmod(source.stat().st_mode & 0o777)
    finally:
        ca.close()
    state.console.print(
        f"{device_id}: serial {record.serial_hex}, valid until {record.not_after.isoformat()}, "
        f"sha256 {record.fingerprint}, files in {out or folder.path}"
    )


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    *,
    devices: Annotated[int, typer.Option(min=1, help="How many devices.")] = 10,
    rate: Annotated[float, typer.Option(help="Readings per second per device.")] = 1.0,
    duration: Annotated[float, typer.Option(help="Seconds to run.")] = 10.0,
    disconnect_rate: Annotated[
        float, typer.Option(help="Probability per device-second of going offline.")
    ] = 0.0,
    offline_seconds: Annotated[float, typer.Option(help="Length of an offline spell.")] = 1.0,
    prefix: Annotated[str, typer.Option(help="Device ids are <prefix>-<n>.")] = "sim",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same schedule).")] = 0,
    port: Annotated[
        int | None, typer.Option(help="Port of a running broker (default: start one).")
    ] = None,
) -> None:
    """Simulate N devices sending signed location readings, with random disconnects.

    Example: ``pervasive device simulate --devices 100 --rate 5 --disconnect-rate 0.01``.
    """
    from pervasive.devices.simulator import SimulationPlan, SimulationReport, Simulator
    from pervasive.messaging import await_admission

    state = state_of(ctx)
    settings = state.settings
    plan = SimulationPlan(devices=devices, rate=rate, duration=duration, seed=seed,
                          disconnect_rate=disconnect_rate, offline_seconds=offline_seconds,
                          prefix=prefix)  # fmt: skip
    for device_id in plan.device_ids():
        _device_id(device_id)  # the prefix must make valid ids before anything is issued

    async def go() -> SimulationReport:
        async with state.platform() as platform:
            ca = platform.authority
            active = set(ca.active_identities())

            def provision(device_id: str) -> DeviceFolder:
                folder = _folder(state, device_id)
                if device_id not in active:
                    ca.write_credentials(ca.issue_device(device_id), folder.path)
                return folder

            folders = {d: provision(d) for d in plan.device_ids()}
            if port is not None:
                # a `broker run` from this home learns new certificates at its next look:
                # until then mosquitto drops (after PUBACK) and amqtt refuses their traffic
                for device_id in folders:
                    await await_admission(settings.home, device_id)
                broker_port = port
            else:
                broker = await platform.broker()
                await broker.settle()
                broker_port = broker.port
            simulator = Simulator(plan, provision=folders.__getitem__,
                                  host=settings.mqtt_host, port=broker_port)  # fmt: skip
            return await simulator.run()

    report = run(go())
    state.console.print(
        f"{report.published} signed readings from {report.devices} devices in "
        f"{report.seconds:.1f} s ({report.rate:.0f}/s), {report.disconnects} disconnects, "
        f"{report.pending} left in outboxes"
    )
