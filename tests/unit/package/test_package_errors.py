"""One exception root, and a drawing of the whole tree that cannot drift from the code.

Every exception class defined anywhere in pervasive derives from ``PervasiveError``
(callers catch one root), and ``errors.py``'s docstring draws each of them under its
real parent with its builtin mixins: a new class, a moved one or a removed one fails
here until the drawing says so.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType

import pytest

import pervasive
from pervasive import errors
from pervasive.errors import PervasiveError


def _raise(name: str) -> None:
    raise ImportError(f"cannot import {name}")


def all_modules() -> list[ModuleType]:
    """Every module of the package, imported (``__main__`` would run the CLI)."""
    names = [
        info.name
        for info in pkgutil.walk_packages(pervasive.__path__, "pervasive.", onerror=_raise)
        if info.name.rpartition(".")[2] != "__main__"
    ]
    return [pervasive, *(importlib.import_module(name) for name in names)]


def exception_classes() -> list[type[BaseException]]:
    """Every exception class defined (not merely imported) in a pervasive module."""
    found: dict[str, type[BaseException]] = {}
    for module in all_modules():
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[key] for key in sorted(found)]


CLASSES = exception_classes()


@dataclass(frozen=True)
class Drawn:
    """One class as the docstring draws it."""

    name: str
    parent: str | None
    mixins: frozenset[str]


_ENTRY = re.compile(r"(?P<name>\w+)(?: \((?P<mixins>[\w, ]+)\))?(?:\s|$)")


def drawn_tree(docstring: str) -> dict[str, Drawn]:
    """Parse the fenced tree: depth from the ``├──``/``└──`` column, parents from depth.

    Lines without a connector after the root are group labels (the defining module).
    """
    block = docstring.split("```")[1]
    lines = [line for line in block.splitlines() if line.strip()]
    drawn: dict[str, Drawn] = {}
    ancestors: list[str] = []
    for number, line in enumerate(lines):
        connector = max(line.find("├── "), line.find("└── "))
        if number == 0:
            depth, text = 0, line
        elif connector >= 0:
            depth, text = connector // 4 + 1, line[connector + 4 :]
        else:
            continue
        match = _ENTRY.match(text)
        assert match, f"cannot read the tree line {line!r}"
        name = match["name"]
        assert name not in drawn, f"{name} is drawn twice in errors.py's tree"
        del ancestors[depth:]
        mixins = match["mixins"] or ""
        drawn[name] = Drawn(
            name,
            ancestors[-1] if ancestors else None,
            frozenset(m.strip() for m in mixins.split(",") if m.strip()),
        )
        ancestors.append(name)
    return drawn


TREE = drawn_tree(errors.__doc__ or "")


def _id(cls: type[BaseException]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_the_walk_finds_the_exceptions_of_every_layer() -> None:
    modules = {cls.__module__ for cls in CLASSES}
    assert {"pervasive.errors", "pervasive.messaging.errors", "pervasive.pki.errors"} <= modules
    assert len(CLASSES) >= 30


@pytest.mark.parametrize("cls", CLASSES, ids=_id)
def test_every_exception_class_derives_from_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, PervasiveError), (
        f"{_id(cls)} does not derive from pervasive.errors.PervasiveError: derive it from "
        "UserError (the caller can act) or InternalError (a bug), keeping any builtin as a mixin"
    )


def test_class_names_are_unique_so_the_tree_can_name_them() -> None:
    names = [cls.__name__ for cls in CLASSES]
    assert sorted(names) == sorted(set(names))


@pytest.mark.parametrize("cls", CLASSES, ids=_id)
def test_every_exception_class_is_drawn_under_its_parent(cls: type[BaseException]) -> None:
    assert cls.__name__ in TREE, f"add {_id(cls)} to the tree in errors.py's docstring"
    drawn = TREE[cls.__name__]
    parents = [base for base in cls.__bases__ if issubclass(base, PervasiveError)]
    mixins = {
        base.__name__
        for base in cls.__bases__
        if not issubclass(base, PervasiveError) and base is not Exception
    }
    assert drawn.parent == (parents[0].__name__ if parents else None)
    assert len(parents) <= 1, f"{cls.__name__} has two pervasive parents; the tree shows one"
    assert drawn.mixins == mixins, f"draw {cls.__name__}'s builtin mixins as ({', '.join(mixins)})"


def test_the_tree_draws_no_class_that_is_gone() -> None:
    assert set(TREE) == {cls.__name__ for cls in CLASSES}


def test_builtin_mixins_still_catch() -> None:
    assert issubclass(errors.InvalidInput, ValueError)
    assert issubclass(errors.NotFound, LookupError)
    with pytest.raises(ValueError):
        raise errors.SchemaViolation("a message does not match its declaration")
