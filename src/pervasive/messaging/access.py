"""Who may publish and subscribe where: the broker's access policy, sans I/O.

One policy feeds three enforcers, so they cannot drift apart:

* :func:`render_mosquitto_acl` writes the mosquitto ``acl_file``;
* the embedded broker asks :func:`may_publish` / :func:`may_subscribe` per packet;
* the client checks its own publishes before they enter the outbox, so a message
  the broker would silently drop (MQTT 3.1.1 has no negative PUBACK) is refused
  with :class:`~pervasive.messaging.errors.TopicDenied` instead of being lost.

A device (certificate CN = device id) may read and write only its own topics:
``pervasive/devices/<CN>/#`` and ``$aws/things/<CN>/shadow/#``. A service
(``svc:<role>[.<instance>]``) gets the grants of its role in :data:`SERVICE_ROLES`.

Example::

    may_publish("lock-7", "pervasive/devices/lock-7/telemetry")   # True
    may_subscribe("lock-7", "pervasive/devices/lock-8/#")         # False
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pervasive.messaging.topics import (
    device_topic_filter,
    is_service_identity,
    service_role,
    shadow_topic_filter,
    validate_identity,
)

__all__ = [
    "SERVICE_ROLES",
    "Access",
    "Grant",
    "filter_covers",
    "grants_for",
    "may_publish",
    "may_receive",
    "may_subscribe",
    "render_mosquitto_acl",
]


class Access(enum.Flag):
    """What a grant allows on its topic filter."""

    READ = enum.auto()
    WRITE = enum.auto()
    READWRITE = READ | WRITE


@dataclass(frozen=True)
class Grant:
    """Permission to read and/or write every topic matched by ``topic_filter``."""

    access: Access
    topic_filter: str


_ALL_DEVICES = device_topic_filter("+")
_ALL_SHADOWS = shadow_topic_filter("+")

SERVICE_ROLES: Mapping[str, tuple[Grant, ...]] = MappingProxyType(
    {
        # the shadow service (paper 004 section 5.6) answers every thing's shadow topics
        "shadow": (Grant(Access.READWRITE, _ALL_SHADOWS),),
        # the gateway sets desired state after verifyOwnership and watches devices
        "gateway": (Grant(Access.READWRITE, _ALL_SHADOWS), Grant(Access.READ, _ALL_DEVICES)),
        # DIVERSITY intermediate nodes (paper 002) read sensor messages, talk among themselves
        "node": (Grant(Access.READ, _ALL_DEVICES), Grant(Access.READWRITE, "pervasive/nodes/#")),
        # notary members (paper 003) talk among themselves in their session inboxes
        "notary": (Grant(Access.READWRITE, "pervasive/notary/#"),),
        # a data provider's exchange system (paper 003's Sys) reads its devices' readings
        "exchange": (Grant(Access.READ, _ALL_DEVICES),),
        # a party's auditor (paper 002, off-chain proof of storage) asks nodes for stored
        # windows and reads their signed answers; it sees no other node traffic
        "auditor": (
            Grant(Access.WRITE, "pervasive/nodes/+/+/windows"),
            Grant(Access.READ, "pervasive/nodes/+/+/windows/reply"),
        ),
        # a pervasive-contract service (paper 001) drives its things and publishes events
        "service": (
            Grant(Access.READWRITE, _ALL_DEVICES),
            Grant(Access.READWRITE, _ALL_SHADOWS),
            Grant(Access.READWRITE, "pervasive/services/#"),
            Grant(Access.READWRITE, "pervasive/events/#"),
        ),
        # oracle nodes (paper 001) read device values and exchange signed reports
        "oracle": (
            Grant(Access.READ, _ALL_DEVICES),
            Grant(Access.READWRITE, "pervasive/oracle/#"),
        ),
        # a consumer of the common event schema (CloudEvents) reads the event stream only
        "events": (Grant(Access.READ, "pervasive/events/#"),),
        # the broker's own admin connection (messaging.mosquitto) tells mosquitto's
        # dynamic-security plugin to close the sessions of revoked identities
        "broker": (Grant(Access.WRITE, "$CONTROL/dynamic-security/v1"),),
        # the dashboard observes everything and writes nothing
        "monitor": (
            Grant(Access.READ, "pervasive/#"),
            Grant(Access.READ, _ALL_SHADOWS),
        ),
    }
)
"""Grants of each service role; ``svc:<role>`` with a role missing here has none."""


def grants_for(identity: str) -> tuple[Grant, ...]:
    """The grants of a device id or service identity (``InvalidInput`` if malformed).

    Example: ``grants_for("lock-7")[0].topic_filter == "pervasive/devices/lock-7/#"``.
    """
    validate_identity(identity)
    if is_service_identity(identity):
        return SERVICE_ROLES.get(service_role(identity), ())
    return (
        Grant(Access.READWRITE, device_topic_filter(identity)),
        Grant(Access.READWRITE, shadow_topic_filter(identity)),
    )


def filter_covers(pattern: str, topic_filter: str) -> bool:
    """True when every topic matched by ``topic_filter`` is matched by ``pattern``.

    A plain topic is a filter matching itself, so this also answers "does ``pattern``
    match this topic". ``a/#`` covers ``a`` itself, as MQTT says.

    Example: ``filter_covers("a/+/#", "a/b/c")`` is ``True``; ``filter_covers("a/+", "a/#")``
    is ``False``.
    """
    wanted = topic_filter.split("/")
    allowed = pattern.split("/")
    for index, level in enumerate(allowed):
        if level == "#":
            return True
        if index >= len(wanted):
            return False
        asked = wanted[index]
        if asked == "#":
            return False
        if level == "+":
            # '+' must not match a leading '$' level: wildcards never reach $-topics
            if index == 0 and asked.startswith("$"):
                return False
            continue
        if asked != level:
            return False
    return len(wanted) == len(allowed)


def _allowed(identity: str, topic_filter: str, needed: Access) -> bool:
    try:
        grants = grants_for(identity)
    except ValueError:
        return False
    return any(
        needed in grant.access and filter_covers(grant.topic_filter, topic_filter)
        for grant in grants
    )


def may_publish(identity: str, topic: str) -> bool:
    """True when ``identity`` may publish on ``topic``.

    Example: ``may_publish("svc:shadow", "$aws/things/lock-7/shadow/update/delta")`` is ``True``.
    """
    return _allowed(identity, topic, Access.WRITE)


def may_subscribe(identity: str, topic_filter: str) -> bool:
    """True when every topic ``topic_filter`` matches is readable by ``identity``.

    Example: ``may_subscribe("lock-7", "$aws/things/lock-7/shadow/#")`` is ``True``.
    """
    return _allowed(identity, topic_filter, Access.READ)


def may_receive(identity: str, topic: str) -> bool:
    """True when a message on ``topic`` may be delivered to ``identity``.

    Example: ``may_receive("lock-7", "pervasive/devices/lock-8/telemetry")`` is ``False``.
    """
    return _allowed(identity, topic, Access.READ)


_MOSQUITTO_ACCESS = {Access.READ: "read", Access.WRITE: "write", Access.READWRITE: "readwrite"}


_SAMPLE_DEVICE = "device"


def render_mosquitto_acl(identities: Iterable[str], denied: Iterable[str] = ()) -> str:
    """The text of a mosquitto ``acl_file`` granting each identity its grants.

    Devices get theirs from ``pattern`` lines (``%u``, the certificate CN), not from
    ``user`` blocks: mosquitto 2.0 drops the ``user`` grants of every *offline*
    certificate client on each reload (SIGHUP) until it reconnects, so QoS 1 messages
    for an offline device were silently not queued after any registration elsewhere;
    patterns are matched at each check. So the file does not change when a device is
    registered, and no reload is needed for it. Services get a ``user`` block each;
    identities without any grant get an empty one, which mosquitto reads as "deny
    everything". ``denied`` identities (revoked while the broker runs, possibly still
    connected) get a block denying every topic, which mosquitto checks before the
    patterns. Invalid identities are skipped: they cannot hold a certificate of ours.

    Example: ``"user svc:shadow" in render_mosquitto_acl(["svc:shadow", "lock-7"])``.
    """
    lines = ["# generated by pervasive.messaging; edits are overwritten", ""]
    level = f"/{_SAMPLE_DEVICE}/"
    lines.extend(
        f"pattern {_MOSQUITTO_ACCESS[grant.access]} {grant.topic_filter.replace(level, '/%u/')}"
        for grant in grants_for(_SAMPLE_DEVICE)
    )
    lines.append("")
    for identity in sorted(set(identities)):
        try:
            grants = grants_for(identity)
        except ValueError:
            continue
        if not is_service_identity(identity):
            continue
        lines.append(f"user {identity}")
        lines.extend(
            f"topic {_MOSQUITTO_ACCESS[grant.access]} {grant.topic_filter}" for grant in grants
        )
        lines.append("")
    for identity in sorted(set(denied) - set(identities)):
        try:
            validate_identity(identity)
        except ValueError:
            continue
        # '#' does not reach $-topics: those are denied by their own line
        lines.extend([f"user {identity}", "topic deny #", "topic deny $aws/#", ""])
    return "\n".join(lines)
