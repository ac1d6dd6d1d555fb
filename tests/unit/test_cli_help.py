"""Every ``wdp`` command's --help names values for humans, never by Python type."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from sdk.cli.main import app

# What typer 0.29 prints by default: <str>, <int>, <bool>, <list[str]>, <path>, <int range>.
PYTHON_TYPE = re.compile(r"<[a-z][a-z_]*(?:\[[^\]]*\])?(?: range)?>")


def _command_paths() -> list[tuple[str, ...]]:
    root = typer.main.get_command(app)
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))

    walk(root, ())
    return paths


PATHS = _command_paths()


def test_the_walk_finds_every_command() -> None:
    names = {" ".join(p) for p in PATHS}
    assert {"", "api", "run", "dev", "demo", "migrate", "artifacts get", "kb stats"} <= names
    assert {"prices sync", "prices ls", "prices set"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "wdp")
def test_help_has_no_python_type_metavars(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert PYTHON_TYPE.findall(result.output) == [], result.output


def test_values_are_named_for_what_they_are() -> None:
    put = CliRunner().invoke(app, ["artifacts", "put", "--help"], env={"COLUMNS": "200"})
    assert re.search(r"--tag\s+KEY=VALUE", put.output), put.output
    assert re.search(r"FILE\s+The file to store", put.output), put.output
    get = CliRunner().invoke(app, ["artifacts", "get", "--help"], env={"COLUMNS": "200"})
    assert re.search(r"--output\s+-o\s+PATH", get.output), get.output
    # A flag takes no value, so none is shown beside it.
    gc = CliRunner().invoke(app, ["artifacts", "gc", "--help"], env={"COLUMNS": "200"})
    assert re.search(r"--dry-run\s+Report, delete nothing", gc.output), gc.output
    prices = CliRunner().invoke(app, ["prices", "set", "--help"], env={"COLUMNS": "200"})
    assert re.search(r"--tier\s+KIND:ABOVE:RATE", prices.output), prices.output
    assert re.search(r"--input\s+USD\s", prices.output), prices.output
