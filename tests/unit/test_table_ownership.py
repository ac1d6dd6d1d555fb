"""One owner per table: only ``sdk.artifacts`` reads or writes the ``work`` schema.

The knowledge base and the Dagster asset and sensor reach artifact versions through
``sdk.artifacts.kb_queue`` and ``sdk.artifacts.reader.open_stored``; SQL of their own on
``work.*`` would put a second writer of ``is_kb_ingested`` (and a second reader of
content) back. This scans the source - strings, docstrings, comments and imports of the
``work`` tables - so the rule stays true without anyone having to remember it.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import sdk.db.schema as schema_module

ROOT = Path(__file__).resolve().parents[2]
OWNER = ("sdk/artifacts/", "sdk/db/")  # the owner, and where the tables are declared
SCANNED = ("sdk", "platform_defs", "ingest_api")
# Known readers outside the owner, to be moved behind the artifact service. The test
# fails when one of them no longer reads work.*, so the list stays exact.

WORK_SQL = re.compile(r"\bwork\.[a-z_]", re.IGNORECASE)
WORK_TABLES = {
    name
    for name, table in vars(schema_module).items()
    if getattr(table, "schema", None) == schema_module.WORK_SCHEMA and hasattr(table, "c")
} | {"WORK_SCHEMA"}


def _violations(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    found: list[str] = []
    tree = ast.parse(source)
    schema_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if WORK_SQL.search(node.value):
                found.append(f"line {node.lineno}: names work.* in {node.value[:60]!r}")
        elif isinstance(node, ast.ImportFrom) and node.module == "sdk.db.schema":
            for alias in node.names:
                if alias.name in WORK_TABLES:
                    found.append(f"line {node.lineno}: imports the work table {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module == "sdk.db":
            schema_names |= {a.asname or a.name for a in node.names if a.name == "schema"}
        elif isinstance(node, ast.Import):
            schema_names |= {a.asname for a in node.names if a.name == "sdk.db.schema" and a.asname}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in WORK_TABLES
            and isinstance(node.value, ast.Name)
            and node.value.id in schema_names
        ):
            found.append(f"line {node.lineno}: uses the work table {node.attr}")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and WORK_SQL.search(token.string):
            found.append(f"line {token.start[0]}: a comment names work.*: {token.string}")
    return found


def _scanned_files() -> list[Path]:
    files = [p for top in SCANNED for p in sorted((ROOT / top).rglob("*.py"))]
    return [p for p in files if not p.relative_to(ROOT).as_posix().startswith(OWNER)]


def test_the_scan_covers_the_knowledge_base_and_the_dagster_definitions() -> None:
    scanned = {p.relative_to(ROOT).as_posix() for p in _scanned_files()}
    assert {"sdk/kb/ingest.py", "sdk/kb/service.py"} <= scanned
    assert {"platform_defs/assets/knowledge_base.py", "platform_defs/sensors.py"} <= scanned
    assert {"artifact_versions", "artifacts", "artifact_links"} <= WORK_TABLES


def test_the_scan_sees_sql_docstrings_comments_and_table_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        '"""Drains work.artifact_versions."""\n'
        "from sdk.db import schema as s\n"
        "from sdk.db.schema import artifact_versions\n"
        "# reads WORK.artifacts\n"
        'SQL = f"UPDATE work.artifact_versions SET x = {1}"\n'
        "t = s.artifact_links\n",
        encoding="utf-8",
    )
    assert len(_violations(probe)) == 5, _violations(probe)


def test_only_the_artifact_package_touches_the_work_schema() -> None:
    offenders = {}
    for path in _scanned_files():
        name = path.relative_to(ROOT).as_posix()
        found = _violations(path)
        if found:
            offenders[name] = found
    assert offenders == {}, (
        "only sdk/artifacts reads or writes work.*: use sdk.artifacts.kb_queue or the "
        f"ArtifactService instead (docs/architecture.md, 'Artifacts'): {offenders}"
    )
