"""A device's folder: TLS credentials, sensor signing keys, outbox and sequence counters.

```
<folder>/cert.pem  key.pem  ca.pem        TLS client identity (written by the CA)
<folder>/sensors/<name>.key               secp256k1 signing key of one sensor (mode 0600)
<folder>/outbox.sqlite                    messages accepted but not yet acknowledged
<folder>/sequence.sqlite                  leased sequence numbers per sensor
```

The TLS key (P-256, broker identity) and the signing keys (secp256k1, paper 002's
``PU_s``) are different keys on purpose: the first proves who is connected, the
second signs readings that a contract can check with ``ecrecover``. Keys are
written readable by the owner only and never logged.

Example::

    folder = DeviceFolder(settings.path("devices", "lock-7"))
    key = folder.signing_key("lock")          # created on first use
    folder.credentials()                      # ClientCredentials(...)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pervasive.crypto import PrivateKey, generate_private_key
from pervasive.errors import ConfigError, InvalidInput, KeystoreError
from pervasive.messaging.tls import ClientCredentials

__all__ = ["DeviceFolder"]


@dataclass(frozen=True)
class DeviceFolder:
    """The files of one device."""

    path: Path

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
        """Where the signing key of ``sensor`` is kept."""
        if not sensor or "/" in sensor or sensor.startswith("."):
            raise InvalidInput(f"sensor name {sensor!r} cannot name a key file")
        return self.path / "sensors" / f"{sensor}.key"

    def signing_key(self, sensor: str, *, create: bool = True) -> PrivateKey:
        """The secp256k1 key ``sensor`` signs with, generated on first use when ``create``.

        Example: ``folder.signing_key("location").public_key``.
        """
        path = self.key_path(sensor)
        if path.is_file():
            try:
                return PrivateKey.from_hex(path.read_text().strip())
            except InvalidInput as exc:
                raise KeystoreError(f"{path} does not hold a signing key") from exc
        if not create:
            raise KeystoreError(f"sensor {sensor!r} has no signing key at {path}")
        key = generate_private_key()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(key.secret.hex())
        os.replace(temporary, path)
        return key

    def sensors(self) -> list[str]:
        """Names of the sensors that have a signing key here."""
        folder = self.path / "sensors"
        return sorted(p.stem for p in folder.glob("*.key")) if folder.is_dir() else []
