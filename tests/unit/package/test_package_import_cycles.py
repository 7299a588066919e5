"""No two modules of pervasive import each other, directly or around a loop.

A cycle is a knot the layers of ARCHITECTURE.md cannot untie: neither module can be
understood, tested or moved without the other, and the import order decides whether
the program starts. import-linter checks layers between packages; this test checks
every module against every other.

What counts as an import (the graph is built from the source with ``ast``, not by
importing it, so it sees every path the code can take):

- every ``import`` and ``from ... import`` statement, wherever it stands: an import
  inside a function is deferred, not gone, and a lazy import that dodges a cycle at
  start-up is still a cycle;
- ``from package import name`` points at ``package.name`` when that is a module,
  otherwise at the package (its ``__init__``, which runs);
- imports under ``if TYPE_CHECKING:`` are left out: they never run, and with
  ``from __future__ import annotations`` they only name types in annotations.
- importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` too; those implicit
  parent-package edges are left out, as import-linter leaves them out: a package that
  re-exports its modules would otherwise be in a cycle with each of them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pervasive

SOURCE = Path(pervasive.__file__).parent


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package at ``root``."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node`` except the bodies of ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.orelse:
                yield statement
                yield from _runtime_nodes(statement)
            continue
        yield child
        yield from _runtime_nodes(child)


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of ``modules`` that module ``name`` (the file ``path``) imports."""

    def existing(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str | None] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(existing(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else existing(source))
    return {target for target in found if target is not None and target != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, for the package at ``root``."""
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: Mapping[str, Iterable[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is not None:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while not component or node not in component:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                if len(component) > 1:
                    found.add(frozenset(component))
    return found


def _show(components: Iterable[frozenset[str]]) -> str:
    return "; ".join(" <-> ".join(sorted(c)) for c in sorted(components, key=sorted)) or "none"


def test_no_module_is_in_an_import_cycle() -> None:
    found = cycles(import_graph(SOURCE))
    assert not found, (
        f"import cycles: {_show(found)}. Move the shared part down a layer (or into its own "
        "module) so the dependency points one way; a function-level import does not count "
        "as a fix"
    )


# -- the graph builder itself, on a package made up for the purpose -----------------------


def write_package(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "pkg" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_imports_inside_functions_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "def f():\n    from pkg import b\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c\n",
            "c.py": "import typing\nif typing.TYPE_CHECKING:\n    pass\nelse:\n    import pkg.a\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.b"] == set()
    assert graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == set()


def test_relative_imports_and_package_attributes_resolve(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "__init__.py": "from pkg.sub import thing\n",
            "sub/__init__.py": "from .inner import thing\nfrom . import other\n",
            "sub/inner.py": "from .. import top\nthing = 1\n",
            "sub/other.py": "from ..sub import inner\n",
            "top.py": "from pkg.sub import other\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg"] == {"pkg.sub"}
    assert graph["pkg.sub"] == {"pkg.sub.inner", "pkg.sub.other"}
    assert graph["pkg.sub.inner"] == {"pkg.top"}
    assert graph["pkg.sub.other"] == {"pkg.sub.inner"}
    assert cycles(graph) == {
        frozenset({"pkg.sub.inner", "pkg.top", "pkg.sub.other"}),
    }


def test_components_are_found_whole() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert cycles(graph) == {frozenset("abc"), frozenset("de")}
