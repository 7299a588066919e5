"""Issue 11 item 3: one device-id rule, the same at registration, the CA, the broker and the shadow.

``pervasive.domain.identifiers`` holds the rule. Every id it accepts is an AWS IoT thing
name the shadow service serves, a topic level and a safe folder name; the CA and the
topic layer (the broker ACL's check) refuse what it refuses, so an id like ``a.b`` can
no longer be registered and then silently ignored by the shadow service.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pervasive.domain.identifiers import DEVICE_ID_PATTERN, is_device_id, validate_device_id
from pervasive.errors import InvalidInput
from pervasive.messaging import topics
from pervasive.pki import CertificateAuthority
from pervasive.shadow.protocol import Operation, parse_request_topic

AWS_THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")  # AWS IoT CreateThing's thingName
BAD = ["a.b", "..", "../x", "/abs", "svc:shadow", "a:b", "-x", "_x", "a b", "é", "", "x" * 129]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertificateAuthority]:
    authority = CertificateAuthority.open(tmp_path_factory.mktemp("ids") / "pki", "pw")
    try:
        yield authority
    finally:
        authority.close()


device_ids = st.from_regex(re.compile(DEVICE_ID_PATTERN), fullmatch=True)


@given(device_ids)
def test_every_device_id_is_a_thing_name_the_shadow_service_serves(device_id: str) -> None:
    assert validate_device_id(device_id) == device_id
    assert AWS_THING_NAME.fullmatch(device_id)
    assert parse_request_topic(f"$aws/things/{device_id}/shadow/update") is not None
    assert Path("devices", device_id).parts == ("devices", device_id)  # one path level


@pytest.mark.parametrize("bad", BAD)
def test_the_rule_refuses_in_one_line(bad: str) -> None:
    assert not is_device_id(bad)
    with pytest.raises(InvalidInput) as refused:
        validate_device_id(bad)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 220


@pytest.mark.parametrize("bad", BAD)
def test_the_ca_and_the_topic_layer_apply_the_same_rule(ca: CertificateAuthority, bad: str) -> None:
    before = ca.refusals["device_id"]
    with pytest.raises(InvalidInput, match="device id"):
        ca.issue_device(bad)
    assert ca.refusals["device_id"] == before + 1
    assert bad not in [record.common_name for record in ca.certificates()]
    with pytest.raises(InvalidInput):
        topics.validate_device_id(bad)  # the broker ACL and the device SDK check with this


def test_a_valid_id_passes_everywhere(ca: CertificateAuthority) -> None:
    assert ca.issue_device("Lock_7-a").record.common_name == "Lock_7-a"
    assert topics.validate_device_id("Lock_7-a") == "Lock_7-a"
    parsed = parse_request_topic("$aws/things/Lock_7-a/shadow/get")
    assert parsed is not None and parsed[1] is Operation.GET
