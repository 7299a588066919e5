"""The chain modules import each other in one direction: no circle, not even inside a function.

import-linter sees module-level imports only; a function-level import is how the old
ledger ↔ transactions circle hid. This walks every import statement of every module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pervasive.chain

CHAIN = Path(pervasive.chain.__file__).parent


def _imports(path: Path, modules: set[str]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[:2] == ["pervasive", "chain"] and len(parts) > 2 and parts[2] in modules:
                found.add(parts[2])
    return found


def _graph() -> dict[str, set[str]]:
    paths = {p.stem: p for p in CHAIN.glob("*.py") if p.stem != "__init__"}
    return {name: _imports(path, set(paths)) for name, path in paths.items()}


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            circle = visit(target, [*path, node])
            if circle:
                return circle
        done.add(node)
        return None

    for start in sorted(graph):
        circle = visit(start, [])
        if circle:
            return circle
    return None


def test_no_import_circle_among_chain_modules() -> None:
    assert _circle(_graph()) is None


def test_the_ledger_is_a_facade_over_transactions_and_rpc() -> None:
    graph = _graph()
    assert {"rpc", "transactions"} <= graph["ledger"]
    assert "ledger" not in graph["transactions"] | graph["rpc"]


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
