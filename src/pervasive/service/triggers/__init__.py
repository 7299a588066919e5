"""Context triggers: call a contract function once per episode of a device-context condition.

Paper 001, "autonomous execution": ``sendMoney`` runs when a container and a
retailer share a location. See README.md in ``service/`` for the control flow.
"""

from pervasive.service.triggers.actions import (
    ALREADY_PAID,
    CallbackAction,
    SendMoney,
    TransactionAction,
    TriggerAction,
)
from pervasive.service.triggers.conditions import CoLocated, Condition, Context, Observation
from pervasive.service.triggers.engine import (
    ContextTrigger,
    Firing,
    Step,
    TriggerEngine,
    TriggerState,
    episode_key,
)
from pervasive.service.triggers.runtime import ContextSource, TriggerService
from pervasive.service.triggers.store import Episode, EpisodeStatus, TriggerStore

__all__ = [
    "ALREADY_PAID",
    "CallbackAction",
    "CoLocated",
    "Condition",
    "Context",
    "ContextSource",
    "ContextTrigger",
    "Episode",
    "EpisodeStatus",
    "Firing",
    "Observation",
    "SendMoney",
    "Step",
    "TransactionAction",
    "TriggerAction",
    "TriggerEngine",
    "TriggerService",
    "TriggerState",
    "TriggerStore",
    "episode_key",
]
