"""`wdp demo` and the example orchestrator, against a real ingest API and Postgres.

The script (examples/orchestrator/script.py) is deterministic. For items 1-3:

| item | research topics | drafts | nodes run (2 + topics + 2 * drafts) | state changes |
| ---- | --------------- | ------ | ----------------------------------- | ------------- |
| 1    | 3               | 2      | 9                                   | 7             |
| 2    | 2               | 1      | 6                                   | 5             |
| 3    | 3               | 1      | 7                                   | 5             |
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from examples.orchestrator import script
from examples.orchestrator.graph import WORKFLOW_NAME
from examples.orchestrator.run import run_items
from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import FileStore
from tests.support.cli import run_wdp
from tests.support.langgraph_graphs import RecordingClient
from tests.support.servers import TEST_API_KEYS, ApiServer, free_port

ROOT = Path(__file__).resolve().parents[2]

NODES_PER_ITEM = {1: 9, 2: 6, 3: 7}
STEPS = 22  # sum of NODES_PER_ITEM
DRAFTS = 4  # item 1 is approved on its second draft, items 2 and 3 on their first
STATE_CHANGES = 17
NODE_COUNTS = {"triage": 3, "plan": 3, "research": 8, "draft": 4, "review": 4}


def demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdk.cli.main", "demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def demo_env(tmp_path: Path, db_url: str, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEMETRY_", "ARTIFACT_"))}
    return env | {
        "DATABASE_URL": db_url,
        "TELEMETRY_ENDPOINT": endpoint,
        "TELEMETRY_API_KEY": TEST_API_KEYS[0],
        "WDP_DATA_DIR": str(tmp_path / "wdp"),
        "COLUMNS": "200",
    }


def test_the_script_is_what_the_table_says() -> None:
    assert {n: script.node_executions(n) for n in (1, 2, 3)} == NODES_PER_ITEM
    assert [script.drafts_needed(n) for n in (1, 2, 3)] == [2, 1, 1]


def test_wdp_demo_puts_events_and_drafts_in_postgres(
    api_server: ApiServer, migrated_db_url: str, tmp_path: Path
) -> None:
    result = demo(
        demo_env(tmp_path, migrated_db_url, api_server.base_url), "--items", "3", "--no-dagster"
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Events in Postgres" in result.stdout
    assert "Where to look" in result.stdout
    assert f'wdp kb search "{script.search_word(1)}"' in result.stdout

    with psycopg.connect(migrated_db_url) as conn:
        counts = dict(
            conn.execute(
                "SELECT event_name, count(*) FROM telemetry.workflow_events "
                "WHERE workflow_name = %s GROUP BY 1",
                [WORKFLOW_NAME],
            ).fetchall()
        )
        nodes = dict(
            conn.execute(
                "SELECT payload->>'node', count(*) FROM telemetry.workflow_events "
                "WHERE workflow_name = %s AND event_name = 'workflow.step_completed' GROUP BY 1",
                [WORKFLOW_NAME],
            ).fetchall()
        )
        outcomes = conn.execute(
            "SELECT payload->>'status', count(DISTINCT run_id), count(DISTINCT item_id) "
            "FROM telemetry.workflow_events "
            "WHERE workflow_name = %s AND event_name = 'workflow.run_completed' GROUP BY 1",
            [WORKFLOW_NAME],
        ).fetchall()
        drafts = conn.execute(
            "SELECT count(*), sum(latest_version) FROM work.artifacts WHERE type = 'draft' "
            "AND owner_run_id IN (SELECT run_id FROM telemetry.workflow_events "
            "WHERE workflow_name = %s)",
            [WORKFLOW_NAME],
        ).fetchone()
    assert counts == {
        "workflow.run_started": 3,
        "workflow.run_completed": 3,
        "workflow.step_completed": STEPS,
        "workflow.item_state_changed": STATE_CHANGES,
        "workflow.artifact_created": DRAFTS,
        "learning.evaluation_scored": DRAFTS,
        "learning.feedback_received": DRAFTS,
    }
    assert nodes == NODE_COUNTS
    assert outcomes == [("succeeded", 3, 3)]
    assert drafts == (3, DRAFTS)


def test_wdp_demo_without_the_api_exits_2_and_says_what_to_do(
    migrated_db_url: str, tmp_path: Path
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = demo(demo_env(tmp_path, migrated_db_url, endpoint), "--items", "1")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"the ingest API at {endpoint} is not reachable" in message
    assert "make run" in message
    assert "Traceback" not in result.stderr + result.stdout


def test_wdp_demo_finds_an_api_on_another_port(
    api_server: ApiServer, migrated_db_url: str, tmp_path: Path
) -> None:
    env = demo_env(tmp_path, migrated_db_url, "unused")
    del env["TELEMETRY_ENDPOINT"]  # the default, :8000, is not where the API listens
    port = api_server.base_url.rsplit(":", 1)[1]
    result = run_wdp(env, "demo", "--api-port", port, "--items", "1", "--no-dagster")
    assert result.returncode == 0, result.stderr
    assert "Events in Postgres" in result.stdout  # exit 0: every event arrived
    by_url = run_wdp(env, "demo", "--api-url", api_server.base_url, "--items", "1", "--no-dagster")
    assert by_url.returncode == 0, by_url.stderr


def test_wdp_demo_says_which_url_it_tried_and_how_to_point_elsewhere(
    migrated_db_url: str, tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens there
    env = demo_env(tmp_path, migrated_db_url, "http://127.0.0.1:9")
    cases = {
        "TELEMETRY_ENDPOINT": ((), "http://127.0.0.1:9"),
        "--api-port": (("--api-port", str(closed)), f"http://127.0.0.1:{closed}"),
        "--api-url": (("--api-url", f"http://localhost:{closed}/"), f"http://localhost:{closed}"),
    }
    for source, (args, url) in cases.items():
        result = run_wdp(env, "demo", *args, "--items", "1", "--no-dagster")
        assert result.returncode == 2, result.stderr
        message = " ".join(result.stderr.split())
        assert f"the ingest API at {url} is not reachable (GET {url}/readyz:" in message
        assert f"URL from {source}" in message
        assert "--api-port PORT" in message
        assert "--api-url URL" in message
        assert "TELEMETRY_ENDPOINT" in message
        assert "Traceback" not in result.stderr
    both = run_wdp(env, "demo", "--api-port", "1", "--api-url", "http://x", "--items", "1")
    assert both.returncode == 2
    assert "not both" in both.stderr


def test_wdp_demo_with_a_wrong_key_exits_2(
    api_server: ApiServer, migrated_db_url: str, tmp_path: Path
) -> None:
    env = demo_env(tmp_path, migrated_db_url, api_server.base_url) | {"TELEMETRY_API_KEY": "nope"}
    result = demo(env, "--items", "1", "--no-dagster")
    assert result.returncode == 2
    assert "refused TELEMETRY_API_KEY" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


@pytest.fixture
def artifacts(engine: sa.Engine, tmp_path: Path) -> ArtifactService:
    return ArtifactService(engine=engine, store=FileStore(tmp_path / "store"))


def test_run_items_in_process(artifacts: ArtifactService, engine: sa.Engine) -> None:
    recorder = RecordingClient()
    summary = asyncio.run(run_items(3, artifacts=artifacts, client=recorder, batch="t1"))

    assert [(i.item_id, i.status, i.drafts) for i in summary.items] == [
        ("demo-t1-001", "approved", 2),
        ("demo-t1-002", "approved", 1),
        ("demo-t1-003", "approved", 1),
    ]
    events = recorder.events
    assert summary.expected_events() == dict(Counter(e.event_name for e in events))
    assert {e.run_id for e in events} == set(summary.run_ids)
    assert all(e.workflow_name == WORKFLOW_NAME for e in events)
    # Every event of a run is about that run's item.
    item_of = {i.run_id: i.item_id for i in summary.items}
    assert all(e.item_id == item_of[e.run_id] for e in events)

    steps = [e for e in events if e.event_name == "workflow.step_completed"]
    assert Counter(e.payload.node for e in steps) == NODE_COUNTS  # type: ignore[attr-defined]
    per_item = Counter(e.item_id for e in steps)
    assert {int(k[-3:]): v for k, v in per_item.items()} == NODES_PER_ITEM
    assert all(e.payload.tokens_in > 0 and e.payload.cost_usd_est > 0 for e in steps)  # type: ignore[attr-defined]
    assert {e.agent_role for e in steps} == {
        "triager",
        "planner",
        "researcher",
        "writer",
        "reviewer",
    }

    first = summary.items[0]
    transitions = [
        (e.payload.from_state, e.payload.to_state)  # type: ignore[attr-defined]
        for e in events
        if e.event_name == "workflow.item_state_changed" and e.item_id == first.item_id
    ]
    assert transitions == [
        ("new", "triaged"),
        ("triaged", "planned"),
        ("planned", "researched"),
        ("researched", "drafted"),
        ("drafted", "needs_changes"),
        ("needs_changes", "drafted"),
        ("drafted", "approved"),
    ]
    scores = [
        (e.payload.passed, e.payload.details["version"])  # type: ignore[attr-defined]
        for e in events
        if e.event_name == "learning.evaluation_scored" and e.item_id == first.item_id
    ]
    assert scores == [(False, 1), (True, 2)]

    # Drafts: markdown, a few KB, different per item, versioned per revision, linked.
    texts = {i.number: artifacts.read_content(i.artifact_id).decode() for i in summary.items}  # type: ignore[arg-type]
    assert all(t.startswith(f"# {script.ticket(n).title}\n") for n, t in texts.items())
    assert all(3_000 < len(t) < 10_000 for t in texts.values())
    assert len(set(texts.values())) == 3
    assert "## Revision notes" in texts[1]
    assert script.search_word(1) in texts[1]
    meta = artifacts.read_artifact(first.artifact_id)  # type: ignore[arg-type]
    assert (meta.type, meta.mime_type, meta.latest_version) == ("draft", "text/markdown", 2)
    assert meta.owner_item_id == first.item_id
    assert meta.owner_run_id == first.run_id
    created = [e for e in events if e.event_name == "workflow.artifact_created"]
    assert {(e.payload.artifact_id, e.payload.version) for e in created} == {  # type: ignore[attr-defined]
        (i.artifact_id, v) for i in summary.items for v in range(1, i.drafts + 1)
    }
    with engine.connect() as conn:
        links = conn.execute(
            sa.text(
                "SELECT artifact_id, version, item_id, run_id FROM work.artifact_links "
                "WHERE artifact_id = ANY(:ids)"
            ),
            {"ids": summary.artifact_ids},
        ).all()
    assert sorted(links) == sorted(
        (i.artifact_id, v, i.item_id, i.run_id)
        for i in summary.items
        for v in range(1, i.drafts + 1)
    )

    # Deterministic: the same item number writes the same draft again.
    again = asyncio.run(run_items(2, artifacts=artifacts, client=RecordingClient(), batch="t2"))
    assert artifacts.read_content(again.items[1].artifact_id).decode() == texts[2]  # type: ignore[arg-type]


def test_wdp_demo_prints_whole_ids_and_the_commands_to_look_further(
    api_server: ApiServer, migrated_db_url: str, tmp_path: Path
) -> None:
    """At 80 columns (a default terminal) nothing the user copies is cut."""
    env = demo_env(tmp_path, migrated_db_url, api_server.base_url) | {"COLUMNS": "80"}
    result = demo(env, "--items", "3", "--no-dagster")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines[: lines.index("Where to look")])
    show = [line.split("wdp ", 1)[1] for line in lines if "wdp runs show " in line]
    (command,) = show
    run_id = command.removeprefix("runs show ")
    with psycopg.connect(migrated_db_url) as conn:
        item = conn.execute(
            "SELECT item_id FROM telemetry.workflow_events WHERE run_id = %s LIMIT 1", [run_id]
        ).fetchone()
        assert item is not None
        assert item[0].endswith("-001")  # item 1: parallel research, two drafts
        batch = conn.execute(
            "SELECT artifact_id FROM work.artifacts WHERE owner_item_id LIKE %s",
            [item[0].removesuffix("001") + "%"],
        ).fetchall()
    assert len(batch) == 3
    for (artifact_id,) in batch:
        assert any(artifact_id in line for line in lines), result.stdout
    assert any(line.strip().endswith(f"wdp runs ls --workflow {WORKFLOW_NAME}") for line in lines)
    assert any(
        line.strip().startswith("Cost and tokens:") and "wdp usage" in line for line in lines
    )
    # The printed command works, and shows item 1's nine steps.
    shown = run_wdp(env, *command.split())
    assert shown.returncode == 0, shown.stderr
    assert f"Run {run_id}" in shown.stdout
    assert f"Steps ({NODES_PER_ITEM[1]})" in shown.stdout
