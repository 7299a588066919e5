"""A device's folder: TLS credentials, sensor signing keys, outbox and sequence counters.

```
<folder>/                                  mode 0700 (written by the CA or here)
<folder>/cert.pem  key.pem  ca.pem         TLS client identity (written by the CA; key 0600)
<folder>/sensors/<name>.key                secp256k1 signing key of one sensor (0600, in 0700)
<folder>/outbox.sqlite                     messages accepted but not yet acknowledged
<folder>/sequence.sqlite                   leased sequence numbers per sensor
```

The TLS key (P-256, broker identity) and the signing keys (secp256k1, paper 002's
``PU_s``) are different keys on purpose: the first proves who is connected, the
second signs readings that a contract can check with ``ecrecover``.

Keys at rest: a folder opened with a ``password`` writes new signing keys *sealed*
(keystore v3, scrypt; :func:`pervasive.crypto.encryption.seal_private_key`) and needs
that password to read them. A folder opened without one is a device that boots
unattended: its keys are plain hex, as AWS IoT and ssh keep a device's or host's key,
protected by the file system only: the key file is written 0600 inside a 0700 folder
and a key file others may read is refused, not used (as ssh refuses an unprotected
key). The TLS key stays plain on every device for the same reason (the broker
connection must come back unattended) with the same modes.

Example::

    folder = DeviceFolder(settings.path("devices", "lock-7"))
    key = folder.signing_key("lock")          # created on first use, plain (unattended)
    locked = DeviceFolder(path, password="s3cret")
    locked.signing_key("lock")                # created sealed; wrong password: KeystoreError
    folder.credentials()                      # ClientCredentials(...)
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

from pervasive.crypto import PrivateKey, generate_private_key
from pervasive.crypto.encryption import (
    SEALED_KDF_ITERATIONS,
    is_sealed,
    seal_private_key,
    unseal_private_key,
)
from pervasive.devices.declarations import validate_sensor_name
from pervasive.errors import ConfigError, InvalidInput, KeystoreError
from pervasive.messaging.tls import ClientCredentials
from pervasive.store.files import private_folder, write_private

__all__ = ["DeviceFolder"]


@dataclass(frozen=True)
class DeviceFolder:
    """The files of one device."""

    path: Path
    password: str | None = field(default=None, repr=False, compare=False)
    """Seals new signing keys and unseals sealed ones; ``None``: unattended, keys plain."""
    kdf_iterations: int = field(default=SEALED_KDF_ITERATIONS, repr=False, compare=False)
    """scrypt ``n`` of keys sealed here."""

    def credentials(self) -> ClientCredentials:
        """The TLS files; :class:`ConfigError` when the device has no certificate yet.

        Example: ``MqttClient(ClientOptions(host, port, folder.credentials()))``.
        """
        creds = ClientCredentials(
            ca_file=self.path / "ca.pem",
            cert_file=self.path / "cert.pem",
            key_file=self.path / "key.pem",
        )
        for file in (creds.ca_file, creds.cert_file, creds.key_file):
            if not file.is_file():
                raise ConfigError(
                    f"{file} is missing: register the device first "
                    "(`pervasive device register <id>`) or copy its credentials here"
                )
        return creds

    @property
    def outbox_path(self) -> Path:
        """The durable outbox of the device's MQTT client."""
        return self.path / "outbox.sqlite"

    @property
    def sequence_path(self) -> Path:
        """The sequence-number leases."""
        return self.path / "sequence.sqlite"

    def key_path(self, sensor: str) -> Path:
        """Where the signing key of ``sensor`` is kept (the sensor-name rule is checked first)."""
        return self.path / "sensors" / f"{validate_sensor_name(sensor)}.key"

    def signing_key(self, sensor: str, *, create: bool = True) -> PrivateKey:
        """The secp256k1 key ``sensor`` signs with, generated on first use when ``create``.

        Sealed under :attr:`password` when one is given, else plain (mode 0600 in a 0700
        folder). Raises a one-line :class:`KeystoreError` for a sealed key without or with
        a wrong password, a plain key others may read, or a corrupt file.

        Example: ``folder.signing_key("location").public_key``.
        """
        path = self.key_path(sensor)
        if not path.exists() and create:
            self._write_key(path, generate_private_key())
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeystoreError(
                f"sensor {sensor!r} has no signing key at {path}: register the device first"
            ) from None
        if is_sealed(data):
            if not self.password:
                raise KeystoreError(
                    f"the signing key {path} is encrypted: open the device folder with its "
                    "password (DeviceFolder(path, password=...))"
                )
            try:
                return unseal_private_key(data, self.password)
            except KeystoreError as exc:
                raise KeystoreError(f"cannot read the signing key {path}: {exc}") from None
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeystoreError(
                f"the signing key {path} is readable by others (mode {mode:04o}): "
                f"run `chmod 600 {path}` and check who read it"
            )
        try:
            return PrivateKey.from_hex(data.decode("ascii").strip())
        except (InvalidInput, UnicodeDecodeError):
            raise KeystoreError(f"{path} does not hold a signing key (corrupt?)") from None

    def store_signing_key(self, sensor: str, key: PrivateKey) -> PrivateKey:
        """Keep ``key`` as ``sensor``'s signing key, durably, unless it holds one already.

        For a key made before it is needed on disk (``device register`` writes it just
        before its declaration leaves for the chain). A different key already there is
        never overwritten: :class:`KeystoreError`.

        Example: ``folder.store_signing_key("location", generate_private_key())``.
        """
        path = self.key_path(sensor)
        self._write_key(path, key)
        stored = self.signing_key(sensor, create=False)
        if stored != key:
            raise KeystoreError(f"{path} already holds another signing key; it was kept")
        return stored

    def _write_key(self, path: Path, key: PrivateKey) -> None:
        """Write ``key`` at ``path`` unless a key is there already (the first one wins)."""
        data = (
            seal_private_key(key, self.password, kdf_iterations=self.kdf_iterations)
            if self.password
            else key.secret.hex().encode()
        )
        private_folder(path.parent)
        # a key another process created meanwhile is never overwritten
        write_private(path, data, keep_existing=True)

    def sensors(self) -> list[str]:
        """Names of the sensors that have a signing key here."""
        folder = self.path / "sensors"
        return sorted(p.stem for p in folder.glob("*.key")) if folder.is_dir() else []
