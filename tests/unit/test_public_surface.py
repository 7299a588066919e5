"""Every module's ``__all__`` is exactly its public surface, so the surface cannot grow unseen.

For each module under ``src/pervasive`` the public names are those it *defines* at module
level without a leading underscore: functions, classes, constants and type aliases
(assignments), including definitions inside ``try``/``if`` blocks but not inside
``if TYPE_CHECKING:``. Imported names, submodules and type variables (``T = TypeVar("T")``,
a typing device rather than something a caller uses) are not part of the surface.

- A module's ``__all__`` lists exactly its public names: a new public function either goes
  into ``__all__`` (a decision someone sees in review) or is named ``_private``.
- A package's ``__init__`` may also re-export names from its submodules: its ``__all__``
  holds every name it defines and every name it imports from its own submodules, and
  nothing else.
- ``__all__`` has no duplicates, and each of its names resolves.

Example of a failure: adding ``def helper()`` to ``pervasive/shadow/core.py`` without
listing it fails ``test_all_is_the_public_surface[pervasive.shadow.core]``.
"""

from __future__ import annotations

import ast
import importlib
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

import pervasive

ROOT = Path(pervasive.__file__).resolve().parent
_TYPE_VARIABLES = {"TypeVar", "ParamSpec", "TypeVarTuple"}


@dataclass(frozen=True)
class Source:
    """One module file, read statically."""

    name: str
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(), filename=str(self.path))


def _sources() -> list[Source]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append(Source(".".join(parts), path))
    return found


SOURCES = _sources()
IMPORTABLE = [source for source in SOURCES if not source.name.endswith("__main__")]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_type_variable(value: ast.expr | None) -> bool:
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name in _TYPE_VARIABLES


def _assigned(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign) and not _is_type_variable(node.value):
        return [
            name.id
            for target in node.targets
            for name in ast.walk(target)
            if isinstance(name, ast.Name)
        ]
    if (
        isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and not _is_type_variable(node.value)
    ):
        return [node.target.id]
    return []


def _defined(body: list[ast.stmt]) -> set[str]:
    """Names a module body binds itself (not by import), ``__all__`` aside."""
    names: set[str] = set()
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                names |= _defined(node.body)
            names |= _defined(node.orelse)
        elif isinstance(node, ast.Try):
            names |= _defined(node.body) | _defined(node.orelse) | _defined(node.finalbody)
            for handler in node.handlers:
                names |= _defined(handler.body)
        elif isinstance(node, ast.With):
            names |= _defined(node.body)
        else:
            names.update(_assigned(node))
    return names - {"__all__"}


def _public(names: set[str]) -> set[str]:
    return {name for name in names if not name.startswith("_")}


def _reexported(tree: ast.Module, module: types.ModuleType) -> set[str]:
    """Public names a package's ``__init__`` imports from its own submodules (not modules).

    A name imported from elsewhere (``from pervasive.errors import InternalError`` in a
    package that only uses it) is a dependency, not a re-export.
    """
    own = module.__name__ + "."
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0 and not (node.module or "").startswith(own):
            continue
        for alias in node.names:
            bound = alias.asname or alias.name
            if not isinstance(getattr(module, bound, None), types.ModuleType):
                names.add(bound)
    return _public(names)


def test_every_module_is_checked() -> None:
    assert len(IMPORTABLE) > 100
    assert {"pervasive", "pervasive.errors", "pervasive.offchain"} <= {s.name for s in SOURCES}


@pytest.mark.parametrize("source", IMPORTABLE, ids=lambda source: source.name)
def test_all_is_the_public_surface(source: Source) -> None:
    module = importlib.import_module(source.name)
    assert hasattr(module, "__all__"), f"{source.path} defines no __all__"
    listed = list(module.__all__)
    assert len(listed) == len(set(listed)), f"{source.name}.__all__ has duplicates"
    missing = [name for name in listed if not hasattr(module, name)]
    assert not missing, f"{source.name}.__all__ names what the module lacks: {missing}"

    tree = source.tree()
    defined = _defined(tree.body)
    if source.is_package:
        surface = _public(defined) | _reexported(tree, module)
        allowed = defined | surface
        unlisted = surface - set(listed)
        stray = set(listed) - allowed
    else:
        unlisted = _public(defined) - set(listed)
        stray = set(listed) - defined
    assert not unlisted, (
        f"{source.name} defines public names missing from __all__: {sorted(unlisted)}; "
        "list them in __all__ or rename them with a leading underscore"
    )
    assert not stray, f"{source.name}.__all__ lists names it does not define: {sorted(stray)}"


def test_main_module_defines_all() -> None:
    """``pervasive.__main__`` runs the CLI on import, so it is only read, not imported."""
    (main,) = [source for source in SOURCES if source.name == "pervasive.__main__"]
    tree = main.tree()
    assigned = {name for node in tree.body for name in _assigned(node)}
    assert "__all__" in assigned
    assert not _public(_defined(tree.body))
