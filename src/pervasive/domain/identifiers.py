"""The one rule for a device id, checked before anything is written or issued.

A device id is at once the certificate CN, the MQTT client id and username, a topic
level (``pervasive/devices/<id>/...``), the AWS IoT thing name of its shadow
(``$aws/things/<id>/shadow/...``), a folder of the data directory
(``<home>/devices/<id>/``) and the prefix of its on-chain sensor ids
(``<id>.<sensor>``). The rule is the intersection of what all of these accept:
1 to 128 ASCII letters, digits, ``_`` or ``-``, starting with a letter or digit.
It is the AWS thing-name alphabet ``[a-zA-Z0-9:_-]{1,128}`` without ``:`` (which
would make ``svc:shadow`` a device) and leaves out ``.`` (the sensor id separator,
and ``..`` in a path) and ``/`` (a path and a topic separator).

Example::

    validate_device_id("lock-7")            # 'lock-7'
    validate_device_id("../../etc/x")       # InvalidInput: device id ... is invalid: ...
    is_device_id("lock.7")                  # False
"""

from __future__ import annotations

import re

from pervasive.errors import InvalidInput

__all__ = ["DEVICE_ID_PATTERN", "MAX_DEVICE_ID", "is_device_id", "validate_device_id"]

MAX_DEVICE_ID = 128
"""The longest device id (the AWS IoT thing-name limit)."""

DEVICE_ID_PATTERN = rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_DEVICE_ID - 1}}}"
"""The device-id rule as a regular expression (match it whole, e.g. in a topic pattern)."""

_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_SHOWN = 40


def is_device_id(value: object) -> bool:
    """Whether ``value`` is a valid device id.

    Example: ``is_device_id("lock-7")`` is ``True``; ``is_device_id("a.b")`` is ``False``.
    """
    return isinstance(value, str) and _DEVICE_ID.fullmatch(value) is not None


def validate_device_id(device_id: object) -> str:
    """Return ``device_id`` if it can name a device, else raise a one-line ``InvalidInput``.

    Example: ``validate_device_id("lock-7")`` returns ``'lock-7'``.
    """
    if isinstance(device_id, str) and _DEVICE_ID.fullmatch(device_id):
        return device_id
    shown = repr(device_id)
    if len(shown) > _SHOWN:
        shown = shown[: _SHOWN - 3] + "..."
    raise InvalidInput(
        f"device id {shown} is invalid: use 1-{MAX_DEVICE_ID} letters, digits, '_' or '-', "
        "starting with a letter or digit (it also names the certificate, the shadow's "
        "thing and a folder)"
    )
