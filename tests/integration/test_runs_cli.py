"""``wdp runs ls`` and ``wdp runs show`` on a real Postgres, with events sent through the SDK
to the real ingest API (tests/support/run_events.py has the hand-made runs and figures)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import FileStore
from sdk.cli.main import app
from sdk.settings import reset_settings_cache
from sdk.telemetry.values import new_ulid
from tests.integration.read_support import call, event, get, post, read_server, v2_step
from tests.support.cli import run_wdp
from tests.support.run_events import STORY, client_for, plain_run, recent, story_run
from tests.support.servers import ApiServer

ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")


@dataclass(frozen=True)
class Stored:
    story: str  # the story run (failed, fan-out, unknown cost, an artifact)
    artifact_id: str
    paged: list[str]  # workflow "paged", newest first: 7 succeeded runs
    running: str  # workflow "paged", item "still", no run_completed
    other: str  # workflow "other", cancelled


@pytest.fixture(scope="module")
def server(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API with a read key too, to compare ``--json`` with its answers."""
    with read_server(migrated_db_url, tmp_path_factory.mktemp("api") / "api.log") as api:
        yield api


@pytest.fixture(scope="module")
def stored(
    server: ApiServer, engine: sa.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Stored:
    tmp = tmp_path_factory.mktemp("runs")
    client = client_for(server.base_url, tmp / "spool")
    story = story_run(client, workflow="story", item="item-story", start=recent(0))
    paged = [
        plain_run(client, workflow="paged", item=f"item-{n}", start=recent(10 + n))
        for n in range(7)
    ]
    running = plain_run(client, workflow="paged", item="still", start=recent(30), status=None)
    other = plain_run(client, workflow="other", item="item-0", start=recent(40), status="cancelled")
    assert client.flush(timeout=30)
    client.shutdown()
    assert client.stats().rejected == 0
    artifacts = ArtifactService(engine=engine, store=FileStore(tmp / "store"))
    draft = artifacts.write_artifact(
        type="draft", content="# Draft\n", extracted_fields={"title": "The draft"}
    )
    artifacts.link(draft.artifact_id, 1, link_type="output", run_id=story, item_id="item-story")
    return Stored(story, draft.artifact_id, paged, running, other)


@pytest.fixture
def cli_env(
    migrated_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    env = {"DATABASE_URL": migrated_db_url, "WDP_DATA_DIR": str(tmp_path / "wdp")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    yield env
    reset_settings_cache()


def wdp(*args: str, columns: int = 200, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def ls_json(*args: str) -> dict[str, object]:
    page: dict[str, object] = json.loads(wdp("runs", "ls", "--json", *args).stdout)
    return page


def ids(page: dict[str, object]) -> list[str]:
    return [r["run_id"] for r in page["runs"]]  # type: ignore[attr-defined]


# --- runs ls ------------------------------------------------------------------------------


def test_ls_lists_newest_first_with_the_api_fields(stored: Stored, cli_env: object) -> None:
    page = ls_json()
    # (test_runs_started_within_the_same_second... adds older runs after these)
    assert ids(page)[:10] == [stored.story, *stored.paged, stored.running, stored.other]
    assert page["next_cursor"] is None
    assert page["limit"] == 50
    assert ids(ls_json("--limit", "4")) == [stored.story, *stored.paged[:3]]
    story = page["runs"][0]  # type: ignore[index]
    assert set(story) == {
        "run_id", "workflow_name", "item_id", "status", "started_at", "ended_at",
        "duration_ms", "error_type", "error_message", "start_recorded", "totals",
    }  # fmt: skip
    assert (story["status"], story["workflow_name"], story["item_id"]) == (
        "failed",
        "story",
        "item-story",
    )
    assert story["duration_ms"] == STORY.duration_ms
    assert story["totals"] == {
        "steps": STORY.steps,
        "errors": STORY.errors,
        "tokens_in": STORY.tokens_in,
        "tokens_out": STORY.tokens_out,
        "tokens_cached_in": 0,
        "cost_usd": float(STORY.cost_usd),
        "cost_unknown_steps": STORY.cost_unknown_steps,
    }


def test_ls_table_shows_the_unknown_cost_count_never_a_bare_sum(
    stored: Stored, cli_env: object
) -> None:
    out = wdp("runs", "ls").stdout
    story = next(line for line in out.splitlines() if stored.story in line)
    assert "≥ $0.0075 + 1 unknown step" in story
    assert "est. cost" in out.splitlines()[0]  # what the steps emitted, not a priced cost
    assert "failed" in story
    assert "6 (1 err)" in story
    running = next(line for line in out.splitlines() if stored.running in line)
    assert "running" in running


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--workflow", "paged"), "paged+running"),
        (("--workflow", "other"), "other"),
        (("--item", "item-0"), "paged0+other"),
        (("--status", "running"), "running"),
        (("--status", "failed"), "story"),
        (("--status", "cancelled", "--workflow", "paged"), ""),
        (("--workflow", "nobody"), ""),
    ],
)
def test_ls_filters(stored: Stored, cli_env: object, args: tuple[str, ...], expected: str) -> None:
    named = {
        "paged": stored.paged,
        "running": [stored.running],
        "other": [stored.other],
        "story": [stored.story],
        "paged0": stored.paged[:1],
    }
    want = [run for part in expected.split("+") if part for run in named[part]]
    assert ids(ls_json(*args)) == want


def test_ls_pages_through_the_printed_cursor(stored: Stored, cli_env: object) -> None:
    seen: list[str] = []
    args = ["runs", "ls", "--workflow", "paged", "--limit", "3"]
    pages = 0
    while True:
        result = wdp(*args)
        pages += 1
        seen += ULID.findall(result.stdout)
        hint = [line for line in result.stderr.splitlines() if line.startswith("next page: ")]
        if not hint:
            break
        (line,) = hint
        command = shlex.split(line.removeprefix("next page: "))
        assert command[:3] == ["wdp", "runs", "ls"]
        assert command[3:7] == ["--workflow", "paged", "--limit", "3"]  # the same filters
        args = command[1:]
    assert pages == 3
    assert seen == [*stored.paged, stored.running]


def test_ls_with_nothing_to_show_says_so(stored: Stored, cli_env: object) -> None:
    result = wdp("runs", "ls", "--workflow", "nobody")
    assert result.stdout == ""
    assert "no runs match" in result.stderr


# --- runs show ----------------------------------------------------------------------------


def test_show_json_is_the_run_with_its_steps_events_and_artifacts(
    stored: Stored, cli_env: object
) -> None:
    detail = json.loads(wdp("runs", "show", stored.story, "--json").stdout)
    assert set(detail) == {
        "run", "steps", "state_changes", "learning_events", "artifacts", "truncated",
    }  # fmt: skip
    assert detail["run"]["run_id"] == stored.story
    assert detail["run"]["totals"]["cost_unknown_steps"] == 1
    steps = detail["steps"]
    assert tuple(s["node"] for s in steps) == STORY.nodes
    review = steps[-1]
    assert (review["cost_usd"], review["cost_unknown"], review["models"]) == (
        None,
        True,
        ["m-unpriced"],
    )
    draft = steps[4]
    assert (draft["status"], draft["error_type"], draft["error_message"]) == (
        "error",
        "ValueError",
        "the outline is empty",
    )
    assert [(c["from_state"], c["to_state"]) for c in detail["state_changes"]] == [
        ("new", "triaged"),
        ("triaged", "failed"),
    ]
    assert [e["event_name"] for e in detail["learning_events"]] == ["learning.feedback_received"]
    assert detail["learning_events"][0]["payload"]["rating"] == 0.25
    (artifact,) = detail["artifacts"]
    assert (artifact["artifact_id"], artifact["version"], artifact["link_type"]) == (
        stored.artifact_id,
        1,
        "output",
    )
    assert artifact["title"] == "The draft"
    assert detail["truncated"] is False


@pytest.mark.parametrize(
    ("args", "api"),
    [
        ((), {}),
        (("--workflow", "paged", "--limit", "3"), {"workflow_name": "paged", "limit": "3"}),
        (
            ("--item", "item-0", "--status", "cancelled"),
            {"item_id": "item-0", "status": "cancelled"},
        ),
    ],
)
def test_ls_json_is_what_the_read_api_answers(
    server: ApiServer, stored: Stored, cli_env: object, args: tuple[str, ...], api: dict[str, str]
) -> None:
    answered = get(server, "/telemetry/runs", **api)
    assert answered.status_code == 200, answered.text
    assert ls_json(*args) == answered.json()


def test_show_json_is_what_the_read_api_answers(
    server: ApiServer, stored: Stored, cli_env: object
) -> None:
    answered = get(server, f"/telemetry/runs/{stored.story}")
    assert answered.status_code == 200, answered.text
    assert json.loads(wdp("runs", "show", stored.story, "--json").stdout) == answered.json()


def _rows(out: str, section: str) -> list[str]:
    """The table lines of one section of ``runs show`` (after its header line)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(section))
    body: list[str] = []
    for line in lines[start + 2 :]:
        if (
            not line.strip()
            or not line.startswith(" ")
            or line.startswith(("  failed: ", "  content: "))
        ):
            break
        body.append(line)
    return body


def test_show_draws_steps_on_a_time_line(stored: Stored, cli_env: object) -> None:
    out = wdp("runs", "show", stored.story, columns=200).stdout
    assert f"Run {stored.story}" in out
    assert "  est. cost ≥ $0.0075 + 1 unknown step" in out
    assert "Model calls" not in out  # the story's steps carry no calls (event_version 1)
    steps = _rows(out, "Steps (6)")
    assert [line.split()[0] for line in steps] == list(STORY.nodes)

    def bar(line: str) -> str:
        (drawn,) = re.findall(r"[·▏▎▍▌▋▊▉█]{10,}", line)
        return drawn

    bars = [bar(line) for line in steps]
    assert len({len(b) for b in bars}) == 1  # one width for all
    width = len(bars[0])
    # Fan-out: the three research branches ran side by side, so their bars are one bar.
    assert bars[1] == bars[2] == bars[3]
    # Where each step ran (start, length in cells) follows its times over the 2.5 s run.
    filled = [len(b.strip("·")) for b in bars]
    starts = [len(b) - len(b.lstrip("·")) for b in bars]
    cell_ms = STORY.duration_ms / width
    assert starts[0] == 0
    assert starts[1] == int(100 / cell_ms)
    assert starts[4] == int(1100 / cell_ms)
    assert starts[5] == int(1500 / cell_ms)
    assert filled[0] < filled[4] < filled[5] < filled[1]  # 100 < 400 < 900 < 1000 ms
    assert steps[4].split()[1:4] == ["error", "+1.1s", "400ms"]
    assert "unknown" in steps[5]
    assert "4 (try 2)" in steps[5]
    assert "$0.0020" in steps[1]
    assert "failed: draft at +1.1s: ValueError: the outline is empty" in out
    changes = _rows(out, "State changes")
    assert changes[0].split()[1:3] == ["new", "triaged"]
    (learning,) = _rows(out, "Learning events")
    assert "learning.feedback_received" in learning
    assert "rating=0.25" in learning
    (link,) = _rows(out, "Artifacts")
    assert link.split()[:4] == [stored.artifact_id, "1", "draft", "output"]
    assert f"wdp artifacts get {stored.artifact_id}" in out


def test_show_lists_each_steps_model_calls_with_the_token_kinds_there_are(
    server: ApiServer, cli_env: object
) -> None:
    """A step with per-call usage: each call with its model, provider and tokens, the
    provider's reported cost, and "no usage" for a call that reported none."""
    run_id = "calls-" + new_ulid()
    ids = {"run_id": run_id, "workflow_name": "calls"}
    t = recent(50)
    calls = [
        call("m-big", 1200, 300, tokens_cached_in=200, tokens_reasoning=120),
        call("m-free", 10, 5, cost_usd_reported=0.0123),
        call("m-quiet", usage_reported=False),
    ]
    post(server, [event("workflow.run_started", t, **ids),
                  v2_step(t + timedelta(seconds=1), "ask", "m-big,m-free,m-quiet", calls, None,
                          **ids)])  # fmt: skip
    out = wdp("runs", "show", run_id).stdout
    (step,) = _rows(out, "Steps (1)")
    assert "unknown" in step  # the estimate it emitted
    header, *rows = _call_table(out)
    assert header.split() == [
        "node", "start", "model", "provider", "in", "out", "cached", "in", "reasoning",
        "reported", "cost",
    ]  # fmt: skip
    assert [r.split() for r in rows] == [
        ["ask", "+900ms", "m-big", "acme", "1,200", "300", "200", "120"],
        ["ask", "+900ms", "m-free", "acme", "10", "5", "0", "0", "$0.0123"],
        ["ask", "+900ms", "m-quiet", "acme", "0", "0", "0", "0", "no", "usage"],
    ]
    detail = json.loads(wdp("runs", "show", run_id, "--json").stdout)
    (shown_step,) = detail["steps"]
    assert shown_step["calls"][1] == {
        "model": "m-free", "provider": "acme", "tokens_in": 10, "tokens_cached_in": 0,
        "tokens_cache_write": 0, "tokens_out": 5, "tokens_reasoning": 0,
        "usage_reported": True, "cost_usd_reported": 0.0123,
    }  # fmt: skip
    assert shown_step["calls"][2]["usage_reported"] is False
    assert detail == get(server, f"/telemetry/runs/{run_id}").json()


def _call_table(out: str) -> list[str]:
    """The header and rows of the ``Model calls`` table."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Model calls"))
    table = []
    for line in lines[start + 1 :]:
        if not line.startswith(" ") or line.startswith("  failed: "):
            break
        table.append(line)
    return table


def test_show_unknown_run_exits_1_and_says_how_long_runs_are_kept(cli_env: object) -> None:
    missing = new_ulid()
    result = wdp("runs", "show", missing, code=1)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert f"error: no run {missing} is stored" in result.stderr
    assert "EVENT_RETENTION_DAYS=90 days" in result.stderr


# --- ids whole, errors clear --------------------------------------------------------------


@pytest.mark.parametrize("columns", [60, 40, 30])
def test_ids_are_whole_on_one_line_in_a_narrow_terminal(
    stored: Stored, cli_env: object, columns: int
) -> None:
    listing = wdp("runs", "ls", "--limit", "3", columns=columns)
    for run in [stored.story, *stored.paged[:2]]:
        assert any(run in line for line in listing.stdout.splitlines()), listing.stdout
    assert all(len(line) <= columns for line in listing.stdout.splitlines())
    # The cursor is a line of its own, whole, however narrow the terminal.
    cursor = ls_json("--limit", "3")["next_cursor"]
    assert f"--cursor {cursor}" in listing.stderr.splitlines()[-1]
    shown = wdp("runs", "show", stored.story, columns=columns).stdout
    assert f"Run {stored.story}" in shown.splitlines()
    assert any(stored.artifact_id in line for line in shown.splitlines()), shown


def test_ids_are_whole_in_a_real_narrow_terminal_process(
    stored: Stored, cli_env: dict[str, str]
) -> None:
    result = run_wdp(cli_env | {"COLUMNS": "60"}, "runs", "ls", "--workflow", "paged")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for run in [*stored.paged, stored.running]:
        assert any(run in line for line in lines), result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--limit", "0"), "--limit: must be from 1 to 500 (got 0)"),
        (("--limit", "501"), "--limit: must be from 1 to 500 (got 501)"),
        (("--limit", "ten"), "--limit: must be a whole number from 1 to 500"),
        (("--status", "done"), "--status: must be one of running, succeeded, failed"),
        (("--cursor", "not a cursor"), "--cursor: is not a cursor printed by `wdp runs ls`"),
        (("--cursor", "WyJ4Il0"), "--cursor: is not a cursor printed by `wdp runs ls`"),
        (("--workflow", "w" * 201), "--workflow: is longer than 200 characters"),
    ],
)
def test_ls_bad_input_is_one_red_line_and_exit_2(
    cli_env: object, args: tuple[str, ...], message: str
) -> None:
    result = wdp("runs", "ls", *args, code=2)
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {message}")
    assert result.stderr.count("\n") == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_show_refuses_an_id_no_event_can_carry(cli_env: object) -> None:
    result = wdp("runs", "show", "r" * 201, code=2)
    assert result.stderr.startswith("error: RUN_ID: is longer than 200 characters")


def test_several_bad_options_are_named_on_one_line(cli_env: object) -> None:
    result = wdp("runs", "ls", "--limit", "0", "--status", "x", code=2)
    assert "--limit: must be" in result.stderr
    assert "--status: must be" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_database_that_is_down_is_a_clear_error(tmp_path: Path) -> None:
    from tests.support.servers import free_port

    env = {"DATABASE_URL": f"postgresql://u@127.0.0.1:{free_port()}/db", "PATH": "/usr/bin"}
    env["WDP_DATA_DIR"] = str(tmp_path)
    for args in (("runs", "ls"), ("runs", "show", new_ulid())):
        result = run_wdp(env, *args)
        assert result.returncode == 2
        assert result.stderr.startswith("error: the database is unavailable: ")
        assert "Traceback" not in result.stderr


def test_a_database_without_the_tables_says_to_migrate(empty_db_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": empty_db_url, "WDP_DATA_DIR": str(tmp_path), "PATH": "/usr/bin"}
    result = run_wdp(env, "runs", "ls")
    assert result.returncode == 2
    assert "telemetry tables are missing" in result.stderr
    assert "run `wdp migrate`" in result.stderr


def test_runs_started_within_the_same_second_page_in_a_stable_order(
    server: ApiServer, cli_env: object, tmp_path: Path
) -> None:
    """Runs that share a start time are ordered by id, and no page repeats or skips one."""
    client = client_for(server.base_url, tmp_path / "spool")
    start = recent(120)
    runs = [plain_run(client, workflow="same-second", item="x", start=start) for _ in range(5)]
    late = plain_run(client, workflow="same-second", item="x", start=start + timedelta(seconds=1))
    assert client.flush(timeout=30)
    client.shutdown()
    first = ls_json("--workflow", "same-second", "--limit", "2")
    rest = ls_json("--workflow", "same-second", "--limit", "10", "--cursor", first["next_cursor"])  # type: ignore[arg-type]
    assert ids(first) + ids(rest) == [late, *sorted(runs, reverse=True)]


def test_text_from_events_is_shown_as_text_never_as_markup(
    server: ApiServer, cli_env: object, tmp_path: Path
) -> None:
    from sdk.telemetry import correlation, emit_run_started, emit_step_completed

    client = client_for(server.base_url, tmp_path / "spool")
    run_id = new_ulid()
    with correlation(run_id=run_id, item_id="[link=http://x]item[/link]", workflow_name="hostile"):
        emit_run_started(ts=recent(200), client=client)
        emit_step_completed(
            node="[bold red]boom[/]", step=1, status="error", duration_ms=5,
            error_type="E", error_message="[blink]no[/blink]", ts=recent(200), client=client,
        )  # fmt: skip
    assert client.flush(timeout=30)
    client.shutdown()
    listed = wdp("runs", "ls", "--workflow", "hostile").stdout
    assert "[link=http://x]item[/link]" in listed
    shown = wdp("runs", "show", run_id).stdout
    assert "[bold red]boom[/]" in shown
    assert "E: [blink]no[/blink]" in shown


HOSTILE_RUN = "EVIL[bold red]x\x1b[31m"
HOSTILE_ITEM = "item\u202eevil\u2066"
HOSTILE_WORKFLOW = "flow\x1b]8;;http://x\x07'q"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def assert_inert(output: str) -> None:
    """No byte that drives a terminal, no direction override, no markup rendered."""
    assert "\x1b" not in output
    assert "\x07" not in output
    assert not set(BIDI) & set(output)


def test_ids_from_events_cannot_drive_the_terminal(
    server: ApiServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Ids are whatever an event carried: in the table, the run's header, the next-page
    command and the errors they are written with visible escapes, never interpreted."""
    from sdk.telemetry import correlation, emit_run_started, emit_step_completed

    client = client_for(server.base_url, tmp_path / "spool")
    for n in range(2):  # two runs: a next page
        run_id = HOSTILE_RUN + str(n)
        with correlation(run_id=run_id, item_id=HOSTILE_ITEM, workflow_name=HOSTILE_WORKFLOW):
            emit_run_started(ts=recent(300 + n), client=client)
            emit_step_completed(
                node="n\u202ee", step=1, status="ok", duration_ms=5, ts=recent(300 + n),
                client=client,
            )  # fmt: skip
    assert client.flush(timeout=30)
    client.shutdown()
    # --json has the very values (JSON escapes what it must).
    page = ls_json("--workflow", HOSTILE_WORKFLOW, "--limit", "1")
    assert ids(page) == [HOSTILE_RUN + "0"]

    listed = wdp("runs", "ls", "--workflow", HOSTILE_WORKFLOW, "--limit", "1")
    assert_inert(listed.stdout + listed.stderr)
    assert "EVIL[bold red]x\\x1b[31m0" in listed.stdout  # the markup as text, the ESC visible
    assert "item\\u202eevil\\u2066" in listed.stdout
    # The next page's command is safe to print and gives the shell the very values back.
    command = listed.stderr.splitlines()[-1].removeprefix("next page: ")
    words = subprocess.run(
        ["bash", "-c", f'for w in {command}; do printf "%s\\0" "$w"; done'],
        capture_output=True, text=True, check=True,
    ).stdout.split("\0")[:-1]  # fmt: skip
    assert words[:5] == ["wdp", "runs", "ls", "--workflow", HOSTILE_WORKFLOW]
    assert words[words.index("--cursor") + 1] == page["next_cursor"]

    # What `wdp runs ls | cat -v` sees: the process's own output, the id with its escapes.
    real = run_wdp(cli_env | {"COLUMNS": "200"}, "runs", "ls", "--workflow", HOSTILE_WORKFLOW)
    assert real.returncode == 0, real.stderr
    assert_inert(real.stdout + real.stderr)
    assert "EVIL[bold red]x\\x1b[31m1" in real.stdout

    shown = wdp("runs", "show", HOSTILE_RUN + "0")
    assert_inert(shown.stdout + shown.stderr)
    assert "Run EVIL[bold red]x\\x1b[31m0" in shown.stdout.splitlines()
    assert "n\\u202ee" in shown.stdout

    missing = wdp("runs", "show", "gone\x1b[2J\u202e", code=1)
    assert_inert(missing.stderr)
    assert "error: no run gone\\x1b[2J\\u202e is stored" in missing.stderr
