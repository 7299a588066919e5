"""The sans-I/O shadow rules: replies, versions, delta, documents, errors, named shadows."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.config import ShadowSettings
from pervasive.shadow.core import Outcome, OwnThingPolicy, ShadowCore, ShadowRecord
from pervasive.shadow.protocol import Operation, ShadowKey

KEY = ShadowKey("lock-1")
T0 = 1_700_000_000.0


class Shadow:
    """Drives a core the way the service does: keeps the record between requests."""

    def __init__(self, core: ShadowCore | None = None, key: ShadowKey = KEY) -> None:
        self.core = core or ShadowCore()
        self.key = key
        self.record: ShadowRecord | None = None

    def send(
        self, operation: Operation, body: Any = None, *, now: float = T0, **kw: Any
    ) -> Outcome:
        payload = b"" if body is None else json.dumps(body).encode()
        outcome = self.core.handle(self.key, operation, payload, record=self.record, now=now, **kw)
        if outcome.record is not None:
            self.record = outcome.record
        return outcome

    def update(self, body: Any, **kw: Any) -> dict[str, Any]:
        return replies(self.send(Operation.UPDATE, body, **kw))


def replies(outcome: Outcome) -> dict[str, Any]:
    """Suffix after the shadow prefix → decoded payload."""
    result = {}
    for message in outcome.messages:
        suffix = message.topic.split("/shadow/", 1)[1]
        if suffix.startswith("name/"):
            suffix = suffix.split("/", 2)[2]
        result[suffix] = json.loads(message.payload)
    return result


def test_first_update_creates_version_1_with_accepted_delta_and_documents() -> None:
    shadow = Shadow()
    out = shadow.update({"state": {"desired": {"door": "open"}}, "clientToken": "c1"})
    assert list(out) == ["update/accepted", "update/delta", "update/documents"]
    assert out["update/accepted"] == {
        "state": {"desired": {"door": "open"}},
        "metadata": {"desired": {"door": {"timestamp": int(T0)}}},
        "version": 1,
        "timestamp": int(T0),
        "clientToken": "c1",
    }
    assert out["update/delta"] == {
        "version": 1,
        "timestamp": int(T0),
        "state": {"door": "open"},
        "metadata": {"door": {"timestamp": int(T0)}},
        "clientToken": "c1",
    }
    documents = out["update/documents"]
    assert "previous" not in documents and documents["clientToken"] == "c1"
    assert documents["current"]["state"] == {"desired": {"door": "open"}}
    assert documents["current"]["version"] == 1


def test_delta_only_while_desired_and_reported_differ() -> None:
    shadow = Shadow()
    shadow.update({"state": {"desired": {"door": "open", "light": "on"}}})
    out = shadow.update({"state": {"reported": {"door": "open"}}}, now=T0 + 1)
    assert out["update/delta"]["state"] == {"light": "on"}  # untouched keys included
    assert out["update/delta"]["metadata"] == {"light": {"timestamp": int(T0)}}
    out = shadow.update({"state": {"reported": {"light": "on", "extra": 1}}}, now=T0 + 2)
    assert "update/delta" not in out
    previous, current = out["update/documents"]["previous"], out["update/documents"]["current"]
    assert (previous["version"], current["version"]) == (2, 3)
    assert current["state"]["reported"] == {"door": "open", "light": "on", "extra": 1}


def test_get_returns_state_delta_metadata_and_version() -> None:
    shadow = Shadow()
    shadow.update(
        {"state": {"desired": {"l": {"r": 1, "g": 2}}, "reported": {"l": {"r": 1, "g": 0}}}}
    )
    out = replies(shadow.send(Operation.GET, {"clientToken": "g"}, now=T0 + 5))
    assert out["get/accepted"] == {
        "state": {
            "desired": {"l": {"r": 1, "g": 2}},
            "reported": {"l": {"r": 1, "g": 0}},
            "delta": {"l": {"g": 2}},
        },
        "metadata": {
            "desired": {"l": {"r": {"timestamp": int(T0)}, "g": {"timestamp": int(T0)}}},
            "reported": {"l": {"r": {"timestamp": int(T0)}, "g": {"timestamp": int(T0)}}},
        },
        "version": 1,
        "timestamp": int(T0 + 5),
        "clientToken": "g",
    }


def test_null_removes_keys_and_sections_and_is_echoed() -> None:
    shadow = Shadow()
    shadow.update({"state": {"desired": {"a": 1, "b": {"c": 2}}, "reported": {"a": 0}}})
    out = shadow.update({"state": {"desired": {"b": {"c": None}}, "reported": None}}, now=T0 + 1)
    assert out["update/accepted"]["state"] == {"desired": {"b": {"c": None}}, "reported": None}
    assert out["update/accepted"]["metadata"] == {
        "desired": {"b": {"c": {"timestamp": int(T0 + 1)}}},
        "reported": {"timestamp": int(T0 + 1)},
    }
    assert shadow.record is not None
    assert shadow.record.state_body() == {"desired": {"a": 1}}
    shadow.update({"state": {"desired": None}})
    got = replies(shadow.send(Operation.GET))["get/accepted"]
    assert got["state"] == {} and got["metadata"] == {} and got["version"] == 3


def test_version_check_is_optimistic_concurrency() -> None:
    shadow = Shadow()
    shadow.update({"state": {"desired": {"a": 1}}})
    out = shadow.update({"state": {"desired": {"a": 2}}, "version": 0, "clientToken": "old"})
    assert out == {
        "update/rejected": {
            "code": 409,
            "message": "Version conflict",
            "timestamp": int(T0),
            "clientToken": "old",
        }
    }
    assert (
        shadow.update({"state": {"desired": {"a": 3}}, "version": 1})["update/accepted"]["version"]
        == 2
    )


def test_get_and_delete_of_a_missing_shadow_are_404() -> None:
    classic, named = Shadow(), Shadow(key=ShadowKey("lock-1", "door"))
    for shadow, name in ((classic, "lock-1"), (named, "door")):
        for operation in (Operation.GET, Operation.DELETE):
            rejected = replies(shadow.send(operation, {"clientToken": "t"}))
            assert rejected[f"{operation.value}/rejected"] == {
                "code": 404,
                "message": f"No shadow exists with name: '{name}'",
                "timestamp": int(T0),
                "clientToken": "t",
            }


def test_delete_keeps_the_version_for_48_hours() -> None:
    shadow = Shadow()
    for value in range(4):
        shadow.update({"state": {"reported": {"n": value}}})
    assert replies(shadow.send(Operation.DELETE))["delete/accepted"] == {
        "version": 4,
        "timestamp": int(T0),
    }
    assert "get/rejected" in replies(shadow.send(Operation.GET))
    assert "delete/rejected" in replies(shadow.send(Operation.DELETE))
    assert (
        shadow.update({"state": {"reported": {"n": 9}}}, now=T0 + 3600)["update/accepted"][
            "version"
        ]
        == 5
    )
    got = replies(shadow.send(Operation.GET, now=T0 + 3601))["get/accepted"]
    assert got["state"] == {"reported": {"n": 9}}  # nothing of the deleted document survives
    shadow.send(Operation.DELETE, now=T0 + 3602)
    later = T0 + 3602 + 48 * 3600 + 1
    assert (
        shadow.update({"state": {"reported": {"n": 1}}}, now=later)["update/accepted"]["version"]
        == 1
    )


def test_named_shadows_are_separate_from_the_classic_one() -> None:
    core = ShadowCore()
    classic, door = Shadow(core), Shadow(core, ShadowKey("lock-1", "door"))
    classic.update({"state": {"desired": {"x": 1}}})
    out = door.send(Operation.UPDATE, {"state": {"desired": {"y": 2}}})
    assert {m.topic for m in out.messages} == {
        "$aws/things/lock-1/shadow/name/door/update/accepted",
        "$aws/things/lock-1/shadow/name/door/update/delta",
        "$aws/things/lock-1/shadow/name/door/update/documents",
    }
    assert door.record is not None and door.record.desired == {"y": 2}


def test_size_limit_counts_desired_and_reported_not_metadata() -> None:
    shadow = Shadow(ShadowCore(ShadowSettings(max_state_bytes=100)))
    fits = {"state": {"desired": {"k": "v" * 50}}}
    assert "update/accepted" in shadow.update(fits)
    too_big = shadow.update({"state": {"reported": {"k": "v" * 50}}, "clientToken": "b"})
    assert too_big["update/rejected"]["code"] == 413
    assert too_big["update/rejected"]["message"] == "The payload exceeds the maximum size allowed"
    assert shadow.record is not None and shadow.record.version == 1


def test_policy_gives_401_and_403() -> None:
    shadow = Shadow(ShadowCore(policy=OwnThingPolicy(admins=frozenset({"app"}))))
    body = {"state": {"desired": {"a": 1}}, "clientToken": "p"}
    assert shadow.update(body)["update/rejected"]["message"] == "Unauthorized"
    rejected = shadow.update(body, principal="lock-2")["update/rejected"]
    assert (rejected["code"], rejected["message"], rejected["clientToken"]) == (
        403,
        "Forbidden",
        "p",
    )
    assert "update/accepted" in shadow.update(body, principal="lock-1")
    assert "update/accepted" in shadow.update(body, principal="app")


def test_registry_gives_thing_not_found() -> None:
    shadow = Shadow(ShadowCore(thing_exists=lambda thing: thing == "other"))
    rejected = shadow.update({"state": {}})["update/rejected"]
    assert (rejected["code"], rejected["message"]) == (404, "Thing not found")


def test_parse_errors_reply_on_the_rejected_topic_of_the_operation() -> None:
    shadow = Shadow()
    outcome = shadow.core.handle(KEY, Operation.UPDATE, b"{", record=None, now=T0)
    assert outcome.error is not None and outcome.error.code == 400 and outcome.record is None
    assert [m.topic for m in outcome.messages] == ["$aws/things/lock-1/shadow/update/rejected"]


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["desired", "reported"]),
            st.dictionaries(st.sampled_from("abc"), st.none() | st.integers(0, 3), max_size=3),
            st.none() | st.integers(0, 8),
        ),
        max_size=12,
    )
)
def test_versions_count_accepted_updates_and_stale_ones_conflict(
    updates: list[tuple[str, dict[str, int | None], int | None]],
) -> None:
    shadow = Shadow()
    accepted = 0
    for section, patch, version in updates:
        out = shadow.update(
            {"state": {section: patch}, **({} if version is None else {"version": version})}
        )
        if version is None or version == accepted:
            accepted += 1
            assert out["update/accepted"]["version"] == accepted
            assert ("update/delta" in out) == bool(shadow.record and shadow.record.delta())
        else:
            assert out["update/rejected"]["code"] == 409
    assert (shadow.record.version if shadow.record else 0) == accepted
