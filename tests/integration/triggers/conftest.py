"""The ``device_platform`` fixture: a CA and mosquitto (``tests/device_platform.py``)."""

from device_platform import DevicePlatform, device_platform

__all__ = ["DevicePlatform", "device_platform"]
