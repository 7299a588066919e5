"""Topic names of the platform and the identities that own them.

Two families of topics exist:

* device topics, ``pervasive/devices/<device_id>/<suffix>`` (telemetry, commands,
  signed sensor messages of paper 002);
* the AWS IoT shadow topics of paper 004 section 5.6, ``$aws/things/<thing>/shadow/<op>``
  for the classic shadow and ``$aws/things/<thing>/shadow/name/<name>/<op>`` for
  named shadows, where ``<op>`` is ``get``, ``update``, ``delete`` optionally followed
  by ``/accepted``, ``/rejected``, ``/delta`` or ``/documents``.

A device's identity (the certificate CN) is its device id and also its thing name.
Services are identified as ``svc:<role>`` or ``svc:<role>.<instance>``.

Example::

    device_topic("lock-7", "telemetry")          # 'pervasive/devices/lock-7/telemetry'
    shadow_topic("lock-7", "update", "delta")    # '$aws/things/lock-7/shadow/update/delta'
    parse_shadow_topic("$aws/things/lock-7/shadow/name/door/get/accepted")
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pervasive.domain import identifiers
from pervasive.errors import InvalidInput

__all__ = [
    "DEVICE_PREFIX",
    "SERVICE_PREFIX",
    "SHADOW_OPERATIONS",
    "SHADOW_RESULTS",
    "ShadowTopic",
    "device_topic",
    "device_topic_filter",
    "is_service_identity",
    "parse_device_topic",
    "parse_shadow_topic",
    "service_role",
    "shadow_topic",
    "shadow_topic_filter",
    "validate_device_id",
    "validate_identity",
    "validate_topic",
    "validate_topic_filter",
]

DEVICE_PREFIX = "pervasive/devices"
SERVICE_PREFIX = "svc:"
SHADOW_OPERATIONS = ("get", "update", "delete")
SHADOW_RESULTS = ("accepted", "rejected", "delta", "documents")

# Device ids double as certificate CNs, MQTT usernames, topic levels and AWS thing
# names, so they must be safe in all four: no '/', '+', '#', whitespace or '$'.
_SERVICE_ID = re.compile(r"svc:([a-z][a-z0-9-]{0,31})(?:\.([A-Za-z0-9_-]{1,64}))?")
_SHADOW_NAME = re.compile(r"[A-Za-z0-9:_-]{1,64}")
_MAX_TOPIC_BYTES = 65535


def validate_device_id(device_id: str) -> str:
    """Return ``device_id`` if it can name a device, else raise ``InvalidInput``.

    The one rule of :mod:`pervasive.domain.identifiers` (the CA and the shadow agree).

    Example: ``validate_device_id("lock-7")`` returns ``'lock-7'``.
    """
    return identifiers.validate_device_id(device_id)


def is_service_identity(identity: str) -> bool:
    """True for a service identity such as ``svc:shadow``.

    Example: ``is_service_identity("svc:shadow")`` is ``True``.
    """
    return identity.startswith(SERVICE_PREFIX)


def service_role(identity: str) -> str:
    """The role of a service identity: ``svc:node.alpha`` has role ``node``.

    Example: ``service_role("svc:shadow")`` returns ``'shadow'``.
    """
    match = _SERVICE_ID.fullmatch(identity)
    if match is None:
        raise InvalidInput(
            f"service identity {identity!r} is invalid: use 'svc:<role>' or "
            "'svc:<role>.<instance>' with a lowercase role"
        )
    return match.group(1)


def validate_identity(identity: str) -> str:
    """Return ``identity`` if it is a valid device id or service identity.

    Example: ``validate_identity("svc:shadow")`` returns ``'svc:shadow'``.
    """
    if is_service_identity(identity):
        service_role(identity)
        return identity
    return validate_device_id(identity)


def validate_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid topic name to publish on (no wildcards).

    Example: ``validate_topic("pervasive/devices/a/t")`` returns it unchanged.
    """
    _check_common(topic)
    if "+" in topic or "#" in topic:
        raise InvalidInput(f"topic {topic!r} contains a wildcard; publish to a concrete topic")
    return topic


def validate_topic_filter(topic_filter: str) -> str:
    """Return ``topic_filter`` if it is a valid subscription filter.

    ``+`` must fill a whole level; ``#`` must be a whole, final level.

    Example: ``validate_topic_filter("$aws/things/+/shadow/#")`` returns it unchanged.
    """
    _check_common(topic_filter)
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise InvalidInput(f"filter {topic_filter!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise InvalidInput(f"filter {topic_filter!r}: '+' must be a whole level")
    return topic_filter


def _check_common(topic: str) -> None:
    if not isinstance(topic, str) or not topic:
        raise InvalidInput("a topic must be a non-empty string")
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"topic {topic!r} is not valid UTF-8 (a lone surrogate)") from None
    if size > _MAX_TOPIC_BYTES:
        raise InvalidInput(f"topic is longer than {_MAX_TOPIC_BYTES} bytes")
    if "\x00" in topic:
        raise InvalidInput("a topic must not contain the NUL character")


def device_topic(device_id: str, suffix: str) -> str:
    """The topic ``pervasive/devices/<device_id>/<suffix>``.

    Example: ``device_topic("lock-7", "telemetry")`` returns
    ``'pervasive/devices/lock-7/telemetry'``.
    """
    validate_device_id(device_id)
    topic = f"{DEVICE_PREFIX}/{device_id}/{suffix}"
    if not suffix or any(not level for level in suffix.split("/")):
        raise InvalidInput(f"topic suffix {suffix!r} must be non-empty levels separated by '/'")
    return validate_topic(topic)


def device_topic_filter(device_id: str = "+") -> str:
    """The filter of every topic of one device (or of all devices with ``"+"``).

    Example: ``device_topic_filter("lock-7")`` returns ``'pervasive/devices/lock-7/#'``.
    """
    if device_id != "+":
        validate_device_id(device_id)
    return f"{DEVICE_PREFIX}/{device_id}/#"


def parse_device_topic(topic: str) -> tuple[str, str]:
    """Split a device topic into ``(device_id, suffix)``; ``InvalidInput`` otherwise.

    Example: ``parse_device_topic("pervasive/devices/lock-7/telemetry")`` returns
    ``('lock-7', 'telemetry')``.
    """
    prefix = DEVICE_PREFIX + "/"
    if not topic.startswith(prefix):
        raise InvalidInput(f"{topic!r} is not a device topic ({prefix}<device_id>/...)")
    device_id, _, suffix = topic[len(prefix) :].partition("/")
    validate_device_id(device_id)
    if not suffix:
        raise InvalidInput(f"{topic!r} has no suffix after the device id")
    return device_id, suffix


@dataclass(frozen=True)
class ShadowTopic:
    """A parsed shadow topic: thing, optional named shadow, operation and result."""

    thing: str
    operation: str
    result: str | None = None
    shadow_name: str | None = None

    @property
    def topic(self) -> str:
        """The topic string this value stands for."""
        return shadow_topic(self.thing, self.operation, self.result, shadow_name=self.shadow_name)


def _shadow_base(thing: str, shadow_name: str | None) -> str:
    validate_device_id(thing)
    base = f"$aws/things/{thing}/shadow"
    if shadow_name is not None:
        if not _SHADOW_NAME.fullmatch(shadow_name):
            raise InvalidInput(
                f"shadow name {shadow_name!r} is invalid: 1-64 letters, digits, ':', '_' or '-'"
            )
        base += f"/name/{shadow_name}"
    return base


def shadow_topic(
    thing: str, operation: str, result: str | None = None, *, shadow_name: str | None = None
) -> str:
    """An AWS IoT shadow topic such as ``$aws/things/<thing>/shadow/update/delta``.

    Example: ``shadow_topic("lock-7", "get", "accepted", shadow_name="door")`` returns
    ``'$aws/things/lock-7/shadow/name/door/get/accepted'``.
    """
    if operation not in SHADOW_OPERATIONS:
        raise InvalidInput(f"shadow operation {operation!r}: choose one of {SHADOW_OPERATIONS}")
    if result is not None and result not in SHADOW_RESULTS:
        raise InvalidInput(f"shadow result {result!r}: choose one of {SHADOW_RESULTS}")
    if result in ("delta", "documents") and operation != "update":
        raise InvalidInput(f"'{result}' exists only for the 'update' operation")
    topic = f"{_shadow_base(thing, shadow_name)}/{operation}"
    return f"{topic}/{result}" if result else topic


def shadow_topic_filter(thing: str = "+") -> str:
    """The filter of every shadow topic (classic and named) of one thing or of all things.

    Example: ``shadow_topic_filter("lock-7")`` returns ``'$aws/things/lock-7/shadow/#'``.
    """
    if thing != "+":
        validate_device_id(thing)
    return f"$aws/things/{thing}/shadow/#"


def parse_shadow_topic(topic: str) -> ShadowTopic:
    """Parse a shadow topic; ``InvalidInput`` when it is not one.

    Example: ``parse_shadow_topic("$aws/things/t1/shadow/update/delta").result == "delta"``.
    """
    levels = topic.split("/")
    if len(levels) < 5 or levels[0] != "$aws" or levels[1] != "things" or levels[3] != "shadow":
        raise InvalidInput(f"{topic!r} is not a shadow topic ($aws/things/<thing>/shadow/...)")
    thing, rest = levels[2], levels[4:]
    shadow_name: str | None = None
    if rest[0] == "name":
        if len(rest) < 3:
            raise InvalidInput(f"{topic!r}: a named shadow needs .../name/<name>/<operation>")
        shadow_name, rest = rest[1], rest[2:]
    if len(rest) > 2:
        raise InvalidInput(f"{topic!r} has extra levels after the shadow operation")
    parsed = ShadowTopic(
        thing=thing,
        operation=rest[0],
        result=rest[1] if len(rest) == 2 else None,
        shadow_name=shadow_name,
    )
    _ = parsed.topic  # re-encoding validates thing, name, operation and result
    return parsed
