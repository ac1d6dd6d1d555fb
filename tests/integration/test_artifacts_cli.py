"""``wdp artifacts``: put, get, show, ls, gc against a real database and both stores."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdk.artifacts.errors import InvalidArtifact
from sdk.cli.main import app
from sdk.settings import reset_settings_cache
from tests.support.cli import run_wdp, run_wdp_on_terminal

pytest_plugins = ["tests.integration.artifact_fixtures"]


@pytest.fixture
def cli_env(
    backend: str,
    migrated_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[dict[str, str]]:
    """The environment a user sets: the database, and ARTIFACT_STORE with its settings."""
    env = {
        "DATABASE_URL": migrated_db_url,
        "WDP_DATA_DIR": str(tmp_path / "wdp"),
        "ARTIFACT_STORE": backend,
    }
    if backend == "s3":
        import boto3

        endpoint = request.getfixturevalue("moto_endpoint")
        bucket = f"cli-{uuid.uuid4().hex[:12]}"
        env |= {
            "S3_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "ARTIFACT_BUCKET": bucket,
        }
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    yield env
    reset_settings_cache()


def wdp(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return {"stdout": result.stdout, "stderr": result.stderr}


def test_put_get_show_ls_round_trip(backend: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "report.md"
    source.write_text("# Report\n\nall good\n")
    out = wdp("artifacts", "put", str(source), "--type", "report", "--tag", "team=a", "--run", "r1")
    put = json.loads(str(out["stdout"]))
    assert (put["version"], put["mime_type"], put["storage_backend"]) == (
        1,
        "text/markdown",
        "inline",
    )
    assert put["owner_run_id"] == "r1"
    assert put["tags"] == ["team=a"]
    assert "stored" in str(out["stderr"])

    shown = json.loads(str(wdp("artifacts", "show", put["artifact_id"])["stdout"]))
    assert shown["preview_text"] == "# Report\n\nall good\n"
    assert shown["extracted_fields"]["line_count"] == 3

    got = wdp("artifacts", "get", put["artifact_id"])
    assert got["stdout"] == "# Report\n\nall good\n"

    listing = str(wdp("artifacts", "ls", "--type", "report", "--tag", "team=a")["stdout"])
    assert put["artifact_id"] in listing

    again = wdp("artifacts", "put", str(source), "--artifact", put["artifact_id"])
    assert json.loads(str(again["stdout"]))["deduplicated"] is True
    assert "unchanged" in str(again["stderr"])


def test_a_large_file_goes_to_the_store_and_comes_back_verified(
    backend: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    data = os.urandom(9 * 1024 * 1024)  # above PROGRESS_MIN_BYTES: the progress path
    source = tmp_path / "weights.bin"
    source.write_bytes(data)
    put = json.loads(str(wdp("artifacts", "put", str(source), "--type", "model")["stdout"]))
    assert put["storage_backend"] == backend
    assert put["mime_type"] == "application/octet-stream"

    second = tmp_path / "weights-v2.bin"
    second.write_bytes(data[::-1])
    v2 = json.loads(
        str(wdp("artifacts", "put", str(second), "--artifact", put["artifact_id"])["stdout"])
    )
    assert v2["version"] == 2

    target = tmp_path / "out" / "weights.bin"
    target.parent.mkdir()
    wdp("artifacts", "get", put["artifact_id"], "--version", "1", "-o", str(target))
    assert target.read_bytes() == data
    assert list(target.parent.iterdir()) == [target]  # no partial file left


def test_gc_dry_run_then_delete(backend: str, cli_env: dict[str, str]) -> None:
    from sdk.artifacts.stores import build_store
    from sdk.settings import get_settings

    store = build_store(get_settings())
    store.put("staging/01J0000000000000000000GC00", [b"orphan"])
    dry = json.loads(str(wdp("artifacts", "gc", "--dry-run", "--grace-hours", "0")["stdout"]))
    assert dry["garbage_keys"] == ["staging/01J0000000000000000000GC00"]
    assert store.exists("staging/01J0000000000000000000GC00")
    kept = json.loads(str(wdp("artifacts", "gc")["stdout"]))  # default grace: 24 h
    assert kept["garbage_keys"] == []
    with pytest.raises(InvalidArtifact, match="writes in progress"):
        wdp("artifacts", "gc", "--grace-hours", "0")
    done = json.loads(str(wdp("artifacts", "gc", "--grace-hours", "0", "--force")["stdout"]))
    assert done["garbage_keys"] == ["staging/01J0000000000000000000GC00"]
    assert not store.exists("staging/01J0000000000000000000GC00")


@pytest.mark.parametrize("backend", ["file"])
def test_errors_are_one_clear_line_without_traceback(
    backend: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sdk.cli.main", "artifacts", *args],
            env={**os.environ, **cli_env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    missing = run("show", "01J00000000000000000000000")
    assert missing.returncode == 2
    assert "error: no artifact 01J00000000000000000000000" in missing.stderr
    assert "Traceback" not in missing.stderr

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9")  # latin-1, declared text by its name
    refused = run("put", str(bad), "--type", "note")
    assert refused.returncode == 2
    assert "not valid UTF-8" in refused.stderr
    assert "Traceback" not in refused.stderr

    no_type = run("put", str(bad))
    assert no_type.returncode == 2
    assert "--type is required" in no_type.stderr


def _put(env: dict[str, str], path: Path, *args: str) -> str:
    result = run_wdp(env, "artifacts", "put", str(path), *args)
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["artifact_id"])


@pytest.mark.parametrize("backend", ["file"])
def test_get_will_not_write_binary_to_a_terminal_unasked(
    backend: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, **cli_env}
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    blob = _put(env, binary, "--type", "blob")
    refused = run_wdp_on_terminal(env, "artifacts", "get", blob)
    assert refused.returncode == 2
    message = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", refused.terminal.decode()).split())
    assert f"{blob} v1 is binary (application/octet-stream, 1.0 kB)" in message
    assert "-o PATH" in message
    assert "--force" in message
    assert b"\xfe\xff" not in refused.terminal  # not one byte of the content
    forced = run_wdp_on_terminal(env, "artifacts", "get", blob, "--force")
    assert forced.returncode == 0
    assert bytes(range(32, 127)) in forced.terminal
    # Piped, or to a file: as before, no questions asked.
    piped = run_wdp_on_terminal(env, "artifacts", "get", blob, stdout_tty=False)
    assert (piped.returncode, piped.stdout) == (0, binary.read_bytes())
    target = tmp_path / "copy.bin"
    to_file = run_wdp_on_terminal(env, "artifacts", "get", blob, "-o", str(target))
    assert to_file.returncode == 0
    assert target.read_bytes() == binary.read_bytes()
    # Text is for reading: it goes to the terminal.
    note = tmp_path / "note.md"
    note.write_text("# Hello\n")
    text = run_wdp_on_terminal(env, "artifacts", "get", _put(env, note, "--type", "note"))
    assert text.returncode == 0
    assert b"# Hello" in text.terminal


@pytest.mark.parametrize("backend", ["file"])
def test_the_progress_bar_is_drawn_on_a_terminal_only_and_cleared(
    backend: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, **cli_env, "FORCE_COLOR": "1"}  # as CI systems set it
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # above PROGRESS_MIN_BYTES
    artifact = _put(env, big, "--type", "model")
    # stdout piped and stderr to a file: no bar at all, only the result line.
    piped = run_wdp_on_terminal(
        env, "artifacts", "get", artifact, stdout_tty=False, stderr_tty=False
    )
    assert piped.returncode == 0
    assert len(piped.stdout) == big.stat().st_size
    assert piped.stderr == b""
    to_file = run_wdp_on_terminal(
        env, "artifacts", "get", artifact, "-o", str(tmp_path / "a.bin"), stderr_tty=False
    )
    assert to_file.returncode == 0
    # (FORCE_COLOR colours the message; the bar and its cursor moves are what must not be.)
    assert b"download" not in to_file.stderr
    assert b"\x1b[2K" not in to_file.stderr
    assert to_file.stderr.startswith(b"wrote ")
    # stderr a terminal (stdout piped into a program): drawn, then erased.
    shown = run_wdp_on_terminal(env, "artifacts", "get", artifact, stdout_tty=False)
    assert shown.returncode == 0
    assert b"download" in shown.terminal
    assert shown.terminal.endswith(b"\x1b[2K")  # the last thing: erase the bar's line


@pytest.mark.parametrize("backend", ["file"])
def test_ls_shows_size_and_mime_and_prints_json_lines(
    backend: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, **cli_env, "COLUMNS": "200"}
    source = tmp_path / "sizes.md"
    source.write_text("x" * 1500)
    artifact = _put(env, source, "--type", "sized", "--tag", "team=ls")
    table = run_wdp(env, "artifacts", "ls", "--type", "sized")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == ["artifact_id", "type", "latest", "size", "mime", "tags", "updated_at"]
    assert row.split()[:7] == [artifact, "sized", "1", "1.5", "kB", "text/markdown", "team=ls"]
    listed = run_wdp(env, "artifacts", "ls", "--type", "sized", "--json")
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    record = json.loads(line)
    assert (record["artifact_id"], record["size_bytes"], record["mime_type"]) == (
        artifact,
        1500,
        "text/markdown",
    )
    assert record["tags"] == ["team=ls"]
