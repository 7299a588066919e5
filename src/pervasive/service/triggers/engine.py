"""The context-trigger state machine: one firing per episode of a condition (sans-I/O).

An *episode* is a maximal stretch of observations during which a trigger's condition
holds. The engine fires on the rising edge only, so a condition that stays true
(the container waits at the retailer and keeps reporting) pays once, and a new
arrival after leaving is a new episode that pays again:

```
holds:   F F T T T F F T T
episode:     1 1 1     2 2
fires:       ^         ^
```

Each :class:`Firing` carries a deterministic idempotency key,
``keccak256(abi_encode(string trigger, string scope, uint64 episode))``, where
``scope`` names the action's target (contract, shipment). The runtime records the
episode before it sends the transaction, and the contract refuses a key it has seen,
so a crash at any point pays at most once.

Example::

    engine = TriggerEngine([ContextTrigger("deliver", CoLocated(("c", "r")), scope="ship-1")])
    step = engine.observe(Observation("c", "cell", "x", 1))       # no firing
    step = engine.observe(Observation("r", "cell", "x", 2))
    step.firings[0].episode                                       # 1
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pervasive.crypto import abi_encode, keccak256
from pervasive.errors import InvalidInput
from pervasive.service.triggers.conditions import Condition, Context, Observation

__all__ = ["ContextTrigger", "Firing", "Step", "TriggerEngine", "TriggerState", "episode_key"]


def episode_key(trigger: str, scope: str, episode: int) -> bytes:
    """The idempotency key of ``episode`` of ``trigger`` acting on ``scope``.

    Example: ``episode_key("deliver", "0xabc/ship-1", 1).hex()``.
    """
    return keccak256(abi_encode(["string", "string", "uint64"], [trigger, scope, episode]))


@dataclass(frozen=True)
class ContextTrigger:
    """Call an action (named by ``scope``) when ``condition`` starts to hold."""

    name: str
    condition: Condition
    scope: str
    """What the action acts on, e.g. ``<contract address>/<shipment id>``; part of the key."""


@dataclass(frozen=True)
class TriggerState:
    """Whether the condition held at the last observation, and how many episodes began."""

    holding: bool = False
    episodes: int = 0


@dataclass(frozen=True)
class Firing:
    """Episode ``episode`` of ``trigger`` began: run its action once with ``key``."""

    trigger: str
    episode: int
    key: bytes
    time: int
    """The time of the observation that started the episode."""


@dataclass(frozen=True)
class Step:
    """What one observation changed; the runtime persists it atomically."""

    observation: Observation | None
    """The observation if it changed the context (``None``: stale or irrelevant)."""
    states: Mapping[str, TriggerState] = field(default_factory=dict)
    """New states of the triggers whose state changed."""
    firings: tuple[Firing, ...] = ()


class TriggerEngine:
    """Evaluate every trigger after each observation; remember edges and episode counts."""

    def __init__(
        self,
        triggers: Iterable[ContextTrigger],
        *,
        context: Context | None = None,
        states: Mapping[str, TriggerState] | None = None,
    ) -> None:
        self.triggers = {t.name: t for t in triggers}
        if not self.triggers:
            raise InvalidInput("a trigger engine needs at least one trigger")
        self.context = context or Context()
        self.states = {name: (states or {}).get(name, TriggerState()) for name in self.triggers}
        self._by_subject: dict[str, list[ContextTrigger]] = {}
        for trigger in self.triggers.values():
            for subject in trigger.condition.subjects:
                self._by_subject.setdefault(subject, []).append(trigger)

    def watches(self, device: str) -> bool:
        """Whether any trigger depends on ``device``."""
        return device in self._by_subject

    def observe(self, observation: Observation) -> Step:
        """Apply one observation; return the changes and the episodes that began.

        Example: ``for firing in engine.observe(obs).firings: ...``.
        """
        if not self.watches(observation.device) or not self.context.update(observation):
            return Step(None)
        changed: dict[str, TriggerState] = {}
        firings: list[Firing] = []
        for trigger in self._by_subject[observation.device]:
            before = self.states[trigger.name]
            holds = trigger.condition.holds(self.context)
            if holds == before.holding:
                continue
            if holds:
                episode = before.episodes + 1
                after = TriggerState(holding=True, episodes=episode)
                firings.append(
                    Firing(
                        trigger.name,
                        episode,
                        episode_key(trigger.name, trigger.scope, episode),
                        observation.time,
                    )
                )
            else:
                after = TriggerState(holding=False, episodes=before.episodes)
            self.states[trigger.name] = after
            changed[trigger.name] = after
        return Step(observation, changed, tuple(firings))
