"""Context triggers fire once per episode, and a restart from the store changes nothing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.service.triggers import (
    CoLocated,
    Context,
    ContextTrigger,
    EpisodeStatus,
    Observation,
    TriggerEngine,
    TriggerStore,
    episode_key,
)

PAIR = ("container-1", "retailer-1")
TRIGGER = ContextTrigger("deliver", CoLocated(PAIR, window=60), scope="0xabc/ship-1")


def test_co_location_needs_same_cell_within_the_window() -> None:
    context = Context()
    condition = CoLocated(PAIR, window=60)
    context.update(Observation("container-1", "cell", "c-1", 100))
    assert not condition.holds(context)
    context.update(Observation("retailer-1", "cell", "c-1", 161))
    assert not condition.holds(context)  # 61 s apart
    context.update(Observation("container-1", "cell", "c-1", 150))
    assert condition.holds(context)
    assert not context.update(Observation("container-1", "cell", "c-9", 120))  # stale: ignored
    assert condition.holds(context)


def test_fires_on_arrival_only_and_again_after_leaving() -> None:
    engine = TriggerEngine([TRIGGER])
    feed = [
        ("container-1", "c-1", 1), ("retailer-1", "c-1", 2), ("container-1", "c-1", 3),
        ("retailer-1", "c-1", 4), ("container-1", "c-2", 5), ("container-1", "c-1", 6),
    ]  # fmt: skip
    fired = []
    for device, cell, moment in feed:
        fired.extend(engine.observe(Observation(device, "cell", cell, moment)).firings)
    assert [(f.episode, f.time) for f in fired] == [(1, 2), (2, 6)]
    assert fired[0].key == episode_key("deliver", "0xabc/ship-1", 1) != fired[1].key


moves = st.lists(
    st.tuples(st.sampled_from(PAIR), st.sampled_from(["a", "b"]), st.integers(0, 3)),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(feed=moves, crash_at=st.integers(0, 40))
def test_firings_equal_rising_edges_even_across_a_restart(
    feed: list[tuple[str, str, int]], crash_at: int
) -> None:
    store = TriggerStore.open(":memory:")
    engine = TriggerEngine([TRIGGER])
    reference = TriggerEngine([TRIGGER])
    clock, holding, edges = 0, False, 0
    for index, (device, cell, step) in enumerate(feed):
        clock += step * 20
        observation = Observation(device, "cell", cell, clock)
        if index == crash_at:  # a restart: rebuild the engine from what was committed
            engine = TriggerEngine([TRIGGER], context=store.context(), states=store.states())
        store.apply(engine.observe(observation), sensor=device, sequence=index)
        reference.observe(observation)
        now = TRIGGER.condition.holds(reference.context)
        edges += now and not holding
        holding = now
    episodes = store.episodes("deliver")
    assert [e.episode for e in episodes] == list(range(1, edges + 1))
    assert len({e.key for e in episodes}) == edges
    assert all(e.status is EpisodeStatus.PENDING for e in episodes)
