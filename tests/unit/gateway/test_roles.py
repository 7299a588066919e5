"""The role book file: assignments, another writer's changes, bad files and names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pervasive.errors import ConfigError, InvalidInput
from pervasive.gateway.policy import Role
from pervasive.gateway.roles import RoleBook, parse_role, roles_file


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return roles_file(tmp_path / "home")


def test_an_empty_book_knows_nobody(path: Path) -> None:
    book = RoleBook.open(path)
    assert book.role_of("door-1") is None
    assert book.roles() == {}
    assert not path.exists()


def test_assign_replace_and_withdraw(path: Path) -> None:
    book = RoleBook.open(path)
    book.assign("door-1", "warehouse")
    book.assign("svc:dashboard", Role.READER)
    assert book.role_of("door-1") is Role.WAREHOUSE
    book.assign("door-1", "OPERATOR")
    assert book.roles() == {"door-1": Role.OPERATOR, "svc:dashboard": Role.READER}
    book.assign("door-1", None)
    assert book.role_of("door-1") is None
    assert json.loads(path.read_text()) == {"roles": {"svc:dashboard": "reader"}}


def test_another_writer_is_seen_at_the_next_lookup(path: Path) -> None:
    gateway_view = RoleBook.open(path)
    assert gateway_view.role_of("door-1") is None
    RoleBook.open(path).assign("door-1", "warehouse")  # e.g. the CLI in another process
    assert gateway_view.role_of("door-1") is Role.WAREHOUSE
    RoleBook.open(path).assign("door-1", None)
    assert gateway_view.role_of("door-1") is None


def test_two_writers_keep_both_changes(path: Path) -> None:
    first, second = RoleBook.open(path), RoleBook.open(path)
    first.assign("door-1", "warehouse")
    second.assign("door-2", "reader")  # second read before the first wrote: no lost update
    assert RoleBook.open(path).roles() == {"door-1": Role.WAREHOUSE, "door-2": Role.READER}


def test_unknown_roles_and_bad_identities_are_refused(path: Path) -> None:
    book = RoleBook.open(path)
    with pytest.raises(InvalidInput, match="warehouse, reader, operator"):
        book.assign("door-1", "admin")
    with pytest.raises(InvalidInput):
        book.assign("door/1", "reader")
    assert parse_role(" Reader ") is Role.READER


def test_a_corrupt_book_says_how_to_fix_it(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text('{"roles": {"door-1": "king"}}')
    with pytest.raises(ConfigError, match="pervasive gateway role"):
        RoleBook.open(path)


def test_the_gateway_view_changes_only_when_it_looks(path: Path) -> None:
    """``assigned`` is what was last read: another writer shows at ``refresh``."""
    gateway_view = RoleBook.open(path, recheck=3600)
    gateway_view.assign("door-1", "reader")  # through this object: at once
    assert gateway_view.assigned == {"door-1": Role.READER}
    RoleBook.open(path).assign("door-1", "warehouse")  # another process
    assert gateway_view.assigned == {"door-1": Role.READER}
    gateway_view.refresh()
    assert gateway_view.assigned == {"door-1": Role.WAREHOUSE}
    path.write_text("not json")
    with pytest.raises(ConfigError, match="pervasive gateway role"):
        gateway_view.refresh()
    assert gateway_view.assigned == {"door-1": Role.WAREHOUSE}  # the last good roles
