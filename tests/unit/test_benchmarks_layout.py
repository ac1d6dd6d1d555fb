"""Benchmarks and examples stand on the product alone: no path hacks, no test imports.

They run as ``python -m benchmarks.<name>`` from the repository root, start the API with
the product's launcher (sdk.cli.launch) and keep their modules small.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400


def _modules(*tops: str) -> list[Path]:
    return [p for top in tops for p in sorted((ROOT / top).rglob("*.py"))]


def test_no_product_code_imports_the_tests() -> None:
    found = []
    for path in _modules("benchmarks", "examples", "sdk", "platform_defs", "ingest_api"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert found == []


def test_benchmarks_and_examples_do_not_touch_sys_path() -> None:
    found = [
        str(path.relative_to(ROOT))
        for path in _modules("benchmarks", "examples")
        if "sys.path" in path.read_text()
    ]
    assert found == []


def test_benchmark_modules_stay_small() -> None:
    large = {
        str(path.relative_to(ROOT)): n
        for path in _modules("benchmarks")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert large == {}


@pytest.mark.parametrize("name", ["ingest", "kb"])
def test_the_split_benchmarks_keep_their_command_line(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"python -m benchmarks.{name}" in result.stdout
    assert "--json" in result.stdout
