"""The dependency rule of clv/ (README "Architecture"): imports point one way — orchestration
(the CLI, the Airflow room) -> pipeline steps -> statistics -> foundations — never back, and no
module imports another that imports it back, at module level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from clv.settings import PROJECT_ROOT

CLV = PROJECT_ROOT / "clv"

# Rooms, lowest first: a module may import its own room and the rooms below it.
ROOMS = {
    "foundations": (
        "clv.errors",
        "clv.names",
        "clv.settings",
        "clv.business_date",
        "clv.contract",
        "clv.sql_text",
        "clv.reports",
    ),
    "statistics": ("clv.stats",),
    "steps": (
        "clv.warehouse",
        "clv.notify",
        "clv.ops",
        "clv.csv_lines",
        "clv.ingest",
        "clv.quarantine",
        "clv.soda_runtime",
        "clv.metrics",
        "clv.anomalies",
        "clv.quality",
        "clv.transform",
        "clv.spark",
        "clv.publish",
        "clv.review",
        "clv.pipeline",
        "clv.quality_run",
        "clv.rollback",
        "clv.backup",
        "clv.confirm",
    ),
    "orchestration": ("clv.airflow", "clv.cli"),
}
# Libraries a room must never import (the statistics never touch the warehouse or the orchestrators).
FORBIDDEN = {
    "statistics": ("airflow", "sqlmesh", "soda", "clv.warehouse", "generator"),
    "foundations": ("airflow", "sqlmesh", "soda", "duckdb", "pandas", "generator"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module this file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


MODULES = {module_name(p): imports(p) for p in sorted(CLV.rglob("*.py"))}


def room(name: str) -> str | None:
    for r, prefixes in ROOMS.items():
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return r
    return None


def clv_imports(name: str) -> set[str]:
    return {m for m in MODULES[name] if m in MODULES and m != name and m != "clv"}


def test_every_module_has_a_room():
    homeless = [m for m in MODULES if m not in ("clv",) and room(m) is None]
    assert homeless == [], f"put these modules in a room (tests/test_architecture.py): {homeless}"


@pytest.mark.parametrize("name", sorted(m for m in MODULES if m != "clv"))
def test_imports_point_down(name):
    order = list(ROOMS)
    mine = order.index(room(name))
    upward = [m for m in clv_imports(name) if order.index(room(m)) > mine]
    assert upward == [], f"{name} ({room(name)}) imports {upward} from a room above it"
    banned = FORBIDDEN.get(room(name), ())
    bad = sorted(m for m in MODULES[name] if any(m == b or m.startswith(b + ".") for b in banned))
    assert bad == [], f"{name} ({room(name)}) must not import {bad}"


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return sorted(set(cycles))


def test_no_import_circles():
    cycles = find_cycles({m: clv_imports(m) for m in MODULES if m != "clv"})
    assert cycles == [], "import circles:\n" + "\n".join(cycles)


def test_the_checks_find_what_they_look_for():
    """The detectors themselves: a circle in a made-up graph, and the rooms' order."""
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        "a -> b -> c -> a",
        "b -> c -> a -> b",
        "c -> a -> b -> c",
    ]
    assert find_cycles({"a": {"b"}, "b": set()}) == []
    assert room("clv.stats.btyd") == "statistics" and room("clv.airflow.tasks") == "orchestration"
    assert room("clv.somewhere_new") is None
