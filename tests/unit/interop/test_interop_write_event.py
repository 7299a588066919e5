"""``write_event`` writes exactly the bytes the SDK's ``JSONFormat.write`` writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from hypothesis import given
from hypothesis import strategies as st

from pervasive.interop import build_event, read_event, write_event

SDK = JSONFormat()
RESERVED = {"id", "source", "type", "time", "subject", "data", "dataschema", "specversion",
            "datacontenttype"}  # fmt: skip
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 260), 1 << 260)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
TIMES = st.datetimes(
    min_value=dt.datetime(1971, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2))]),
)


@given(
    st.dictionaries(st.text(max_size=10), JSON, max_size=6),
    TIMES,
    st.none() | st.text(min_size=1, max_size=20),
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True).filter(lambda n: n not in RESERVED),
        st.integers(0, 1 << 40) | st.text(max_size=12),
        max_size=4,
    ),
)
def test_json_events_are_written_as_the_sdk_writes_them(
    data: dict[str, Any], time: dt.datetime, subject: str | None, extensions: dict[str, Any]
) -> None:
    event = build_event(
        id="000000000042/000001/000003/9f2c01ab", source="eip155:31337:0xAb", type="dev.x.y-z",
        time=time, data=data, dataschema="urn:pervasive:schema:test:1", subject=subject,
        extensions=extensions,
    )  # fmt: skip
    assert write_event(event) == SDK.write(event)
    assert (
        read_event(write_event(event)).get_data()
        == SDK.read(CloudEvent, SDK.write(event)).get_data()
    )


@given(st.binary(max_size=40) | st.text(max_size=40))
def test_other_data_is_left_to_the_sdk(data: bytes | str) -> None:
    attributes = {"id": "1", "source": "urn:x", "type": "dev.x.y", "specversion": "1.0"}
    event = CloudEvent(attributes=attributes, data=data)
    assert write_event(event) == SDK.write(event)


def test_a_datetime_inside_data_is_written_as_the_sdk_writes_it() -> None:
    when = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    event = build_event(
        id="1", source="urn:x", type="dev.x.y", time=when, data={"at": when}, dataschema="urn:s"
    )
    assert write_event(event) == SDK.write(event)
    assert b'"at": "2026-05-01T00:00:00Z"' in write_event(event)
