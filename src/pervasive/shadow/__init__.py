"""Device shadows with the AWS IoT Device Shadow rules (paper 004, sections 4.8 and 5.6).

- :mod:`~pervasive.shadow.document`: pure JSON merge, delta and metadata;
- :mod:`~pervasive.shadow.protocol`: topics, error catalogue, request parsing;
- :mod:`~pervasive.shadow.core`: the sans-I/O service (:class:`ShadowCore`);
- :mod:`~pervasive.shadow.store`: SQLite records with an outbox (:class:`ShadowStore`);
- :mod:`~pervasive.shadow.service`: the asyncio adapter over MQTT (:class:`ShadowService`);
- :mod:`~pervasive.shadow.client`: the device side (:class:`ShadowClient`).
"""

from pervasive.shadow.client import DeltaHandler, DeltaTracker, ShadowClient
from pervasive.shadow.core import (
    AllowAll,
    OutboundMessage,
    Outcome,
    OwnThingPolicy,
    ShadowCore,
    ShadowPolicy,
    ShadowRecord,
)
from pervasive.shadow.limits import InFlightLimit, ThingRateLimiter
from pervasive.shadow.protocol import Operation, ShadowError, ShadowKey
from pervasive.shadow.service import REQUEST_FILTERS, ShadowService
from pervasive.shadow.store import DuplicateShadowRequest, ShadowStore, StaleShadowWrite

__all__ = [
    "REQUEST_FILTERS",
    "AllowAll",
    "DeltaHandler",
    "DeltaTracker",
    "DuplicateShadowRequest",
    "InFlightLimit",
    "Operation",
    "OutboundMessage",
    "Outcome",
    "OwnThingPolicy",
    "ShadowClient",
    "ShadowCore",
    "ShadowError",
    "ShadowKey",
    "ShadowPolicy",
    "ShadowRecord",
    "ShadowService",
    "ShadowStore",
    "StaleShadowWrite",
    "ThingRateLimiter",
]
