"""Shared constants have one home: each is spelled once, and everything else imports it.

The checks read the product's source (sdk, platform_defs, ingest_api, migrations,
benchmarks, examples) as syntax trees, so comments and docstrings may still describe a
constant; only code that spells it again fails.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdk.db import locks, partitions
from sdk.db.partitions import PARTITION_NAME_PATTERN, Month, month_of_table
from sdk.db.schema import WORKFLOW_EVENT_COLUMNS, workflow_events

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("sdk", "platform_defs", "ingest_api", "migrations", "benchmarks", "examples")


def sources() -> Iterator[tuple[str, ast.Module]]:
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the string nodes that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def strings(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant that is not a docstring (f-string parts too)."""
    skip = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


# --- advisory lock keys ---------------------------------------------------------------


def test_lock_keys_are_distinct_and_spelled_only_in_sdk_db_locks() -> None:
    keys = locks.ALL_LOCK_KEYS
    assert len(set(keys)) == len(keys)
    named = {v for k, v in vars(locks).items() if k.endswith(("_LOCK_KEY", "_LOCK_CLASS"))}
    assert named == set(keys)
    elsewhere = []
    for name, tree in sources():
        if name == "sdk/db/locks.py":
            continue
        for node in ast.walk(tree):
            # The "wdp" key space, whatever the spelling (hex, decimal, underscores).
            if (
                isinstance(node, ast.Constant)
                and type(node.value) is int
                and (node.value in keys or node.value >> 12 == 0x77647)
            ):
                elsewhere.append(f"{name}:{node.lineno}: {node.value:#x}")
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and target.id.endswith("_LOCK_KEY"):
                        elsewhere.append(f"{name}:{node.lineno}: defines {target.id}")
    assert elsewhere == [], "advisory-lock keys belong in sdk/db/locks.py"


def test_every_advisory_lock_call_uses_a_key_from_sdk_db_locks() -> None:
    users = []
    for name, tree in sources():
        if any("pg_advisory" in text for _, text in strings(tree)) or any(
            isinstance(n, ast.Attribute) and n.attr.startswith("pg_advisory")
            for n in ast.walk(tree)
        ):
            users.append(name)
            imported = {
                alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "sdk.db.locks"
                for alias in node.names
            }
            assert imported, f"{name} takes an advisory lock without a key from sdk.db.locks"
    assert len(users) >= 4  # partitions, aggregates, retention, KB ingestion: the scan works


# --- partition names ------------------------------------------------------------------

# A partition name spelled out, or a pattern or template of one: "workflow_events_p"
# followed by a digit, a regex or format construct, or the end of an f-string part.
SPELLED_PARTITION = re.compile(r"workflow_events_p(?:[0-9\[(\\{%]|$)")


def test_the_partition_name_is_spelled_only_by_its_pattern() -> None:
    found = [
        f"{name}:{line}: {text!r}"
        for name, tree in sources()
        for line, text in strings(tree)
        if SPELLED_PARTITION.search(text)
    ]
    assert found == [], "derive partition names from sdk.db.partitions"


def test_the_pattern_parses_what_month_names_and_nothing_else() -> None:
    for month in (Month(2026, 1), Month(1999, 12), Month(2100, 7)):
        assert month_of_table(month.table_name) == month
        assert re.fullmatch(PARTITION_NAME_PATTERN, month.table_name)
    prefix = partitions.PARTITION_PREFIX
    assert prefix == f"{workflow_events.name}_p"
    for name in (
        workflow_events.name,
        f"{prefix}2026_1",
        f"{prefix}2026_01\n",
        f"x{prefix}2026_01",
    ):
        assert month_of_table(name) is None, name
    assert month_of_table(f"{prefix}\u0662\u0660\u0662\u0666_01") is None  # Arabic-Indic digits


# --- the workflow_events column list ----------------------------------------------------

EVENT_COLUMNS = frozenset(c.name for c in workflow_events.columns)
_NAME = r"[a-z_]+"
COLUMN_RUN = re.compile(rf"\b{_NAME}(?:\s*,\s*{_NAME}){{3,}}\b")


def _spelled_column_lists(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for line, text in strings(tree):
        for match in COLUMN_RUN.finditer(text):
            names = re.findall(_NAME, match.group())
            # five or more event columns in a row, separated by commas only (four can be
            # another table's: artifact_links has item_id, run_id, event_id, workflow_name)
            run = best = 0
            for n in names:
                run = run + 1 if n in EVENT_COLUMNS else 0
                best = max(best, run)
            if best >= 5:
                yield line, match.group()
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(items) >= 4 and all(isinstance(i, str) and i in EVENT_COLUMNS for i in items):
                yield node.lineno, repr(items)


def test_the_event_columns_are_listed_only_by_the_schema() -> None:
    found = [
        f"{name}:{line}: {text}"
        for name, tree in sources()
        # sdk/db/schema.py is the home; migrations are history and must not follow it.
        if name != "sdk/db/schema.py" and not name.startswith("migrations/")
        for line, text in _spelled_column_lists(tree)
    ]
    assert found == [], "build column lists from sdk.db.schema.WORKFLOW_EVENT_COLUMNS"


def test_the_written_columns_are_the_table_but_received_at() -> None:
    assert list(WORKFLOW_EVENT_COLUMNS) == [
        c.name for c in workflow_events.columns if c.name != "received_at"
    ]


def test_the_ingest_store_writes_and_compares_every_written_column() -> None:
    pytest.importorskip("psycopg_pool")
    from ingest_api import store

    listed = ", ".join(WORKFLOW_EVENT_COLUMNS)
    assert f"INSERT INTO telemetry.workflow_events ({listed})" in store.INSERT_SQL
    assert store.INSERT_SQL.count("%b") == len(WORKFLOW_EVENT_COLUMNS)
    assert store.EXISTING_SQL.count("%b") == len(WORKFLOW_EVENT_COLUMNS) + 1  # + ordinals
    assert WORKFLOW_EVENT_COLUMNS[2:] == store.COMPARED  # all but the key (id, time)
    # The statement's arrays are the row's fields transposed (_columns): they must be
    # the columns in order. A row whose every field is its own column's name shows it.
    row_fields = list(store.EventRow._fields)
    assert row_fields == [("payload_json" if c == "payload" else c) for c in WORKFLOW_EVENT_COLUMNS]
    row = store.EventRow(*row_fields)  # type: ignore[arg-type]
    params = store._columns([row])
    assert [values[0] for values in params] == row_fields
    # ... and each array is encoded as its column's type, which the statement casts to.
    expected = {"event_time": "timestamptz", "ts": "timestamptz", "event_version": "int4"}
    for name, values in zip(WORKFLOW_EVENT_COLUMNS, params, strict=True):
        sql_type = type(values).SQL_TYPE  # type: ignore[attr-defined]
        assert sql_type == expected.get(name, "text"), name
        assert f"%b::{sql_type}[]" in store.INSERT_SQL
    assert all(values == [] for values in store._columns([]))


# --- the first aggregate day ------------------------------------------------------------


def test_the_first_aggregate_day_is_spelled_only_in_the_settings() -> None:
    default = None
    found = []
    for name, tree in sources():
        for line, text in strings(tree):
            if "2026-01-01" in text:
                found.append(f"{name}:{line}: {text!r}")
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "date"
                and [a.value for a in node.args if isinstance(a, ast.Constant)] == [2026, 1, 1]
            ):
                if name == "sdk/settings.py":
                    default = node.lineno
                else:
                    found.append(f"{name}:{node.lineno}: date(2026, 1, 1)")
    assert default is not None, "the default lives in sdk/settings.py"
    assert found == [], "read the first aggregate day from AGGREGATE_START_DATE"
