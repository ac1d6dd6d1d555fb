"""GET /telemetry/runs and /telemetry/runs/{run_id} over real HTTP on a real Postgres.

Events go in through the ingest API (and, for the run detail, from a real instrumented
LangGraph graph through the SDK's client); artifacts through the artifact service. Every
test works in a workflow (or run ids) of its own, so they share one database.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from sdk.artifacts import ArtifactService
from sdk.artifacts.stores.file import FileStore
from sdk.db.engine import create_engine
from sdk.langgraph import instrument
from sdk.telemetry import TelemetryClient
from sdk.usage.aggregation import GROUPED_SQL, STEP_EVENT, day_bounds
from tests.integration.read_support import (
    INGEST,
    READ,
    call,
    event,
    get,
    post,
    read_server,
    step,
    v2_step,
)
from tests.support.langgraph_graphs import (
    PIPELINE_ROLES,
    PRICES,
    REVIEW_CACHED,
    build_pipeline,
    build_retrying,
    pipeline_steps,
    pipeline_transitions,
)
from tests.support.servers import TEST_API_KEYS, ApiServer

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with read_server(migrated_db_url, tmp_path_factory.mktemp("api") / "api.log") as api:
        yield api


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def a_run(
    run_id: str,
    started: datetime,
    *,
    workflow: str,
    item: str | None = None,
    status: str | None = None,
    steps: Sequence[float | None] = (),
) -> list[dict[str, Any]]:
    """A run's events: its start, one step per cost given, and its end if ``status``."""
    ids = {"run_id": run_id, "workflow_name": workflow, "item_id": item}
    events = [event("workflow.run_started", started, **ids)]
    for n, cost in enumerate(steps):
        events.append(
            step(started + timedelta(seconds=n + 1), node="work", step=n, cost=cost, **ids)
        )
    if status is not None:
        payload = {"status": status, "duration_ms": 4321.0, "steps": len(steps)}
        if status == "failed":
            payload |= {"error_type": "TimeoutError", "error_message": "took too long"}
        events.append(
            event("workflow.run_completed", started + timedelta(minutes=1), payload=payload, **ids)
        )
    return events


def run_ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["run_id"] for r in response.json()["runs"]]


# --- the list ------------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_status_end_and_totals(server: ApiServer) -> None:
    wf = unique("wf")
    post(
        server,
        a_run("r-ok-" + wf, T0, workflow=wf, status="succeeded", steps=[0.25, 0.5])
        + a_run("r-failed-" + wf, T0 + timedelta(minutes=5), workflow=wf, status="failed")
        + a_run("r-running-" + wf, T0 + timedelta(minutes=9), workflow=wf, steps=[None, 0.125]),
    )
    response = get(server, "/telemetry/runs", workflow_name=wf)
    assert run_ids(response) == ["r-running-" + wf, "r-failed-" + wf, "r-ok-" + wf]
    running, failed, ok = response.json()["runs"]
    assert ok["status"] == "succeeded"
    assert ok["started_at"] == T0.isoformat()
    assert ok["ended_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert ok["duration_ms"] == 4321.0
    assert ok["totals"] == {
        "steps": 2,
        "errors": 0,
        "tokens_in": 20,
        "tokens_out": 10,
        "tokens_cached_in": 0,
        "cost_usd": 0.75,
        "cost_unknown_steps": 0,
    }
    assert (failed["status"], failed["error_type"]) == ("failed", "TimeoutError")
    assert (running["status"], running["ended_at"], running["duration_ms"]) == (
        "running",
        None,
        None,
    )
    # An unknown cost is counted, not summed as $0.
    assert (running["totals"]["cost_usd"], running["totals"]["cost_unknown_steps"]) == (0.125, 1)
    assert response.json()["next_cursor"] is None


def test_all_unknown_costs_are_a_count_beside_zero_known_cost(server: ApiServer) -> None:
    wf = unique("wf")
    post(server, a_run("r-" + wf, T0, workflow=wf, status="succeeded", steps=[None, None, None]))
    (run,) = get(server, "/telemetry/runs", workflow_name=wf).json()["runs"]
    assert run["totals"]["cost_usd"] == 0
    assert run["totals"]["cost_unknown_steps"] == 3
    assert run["totals"]["steps"] == 3


def test_filters_by_item_status_and_start_time(server: ApiServer) -> None:
    wf = unique("wf")
    item_a, item_b = unique("item"), unique("item")
    post(
        server,
        a_run("a1-" + wf, T0, workflow=wf, item=item_a, status="succeeded")
        + a_run("b1-" + wf, T0 + timedelta(hours=1), workflow=wf, item=item_b, status="failed")
        + a_run("a2-" + wf, T0 + timedelta(hours=2), workflow=wf, item=item_a)
        + a_run("other-" + wf, T0 + timedelta(hours=3), workflow=unique("wf"), item=item_a),
    )
    assert run_ids(get(server, "/telemetry/runs", item_id=item_a)) == [
        "other-" + wf,
        "a2-" + wf,
        "a1-" + wf,
    ]
    assert run_ids(get(server, "/telemetry/runs", item_id=item_a, workflow_name=wf)) == [
        "a2-" + wf,
        "a1-" + wf,
    ]
    assert run_ids(get(server, "/telemetry/runs", workflow_name=wf, status="running")) == [
        "a2-" + wf
    ]
    assert run_ids(get(server, "/telemetry/runs", workflow_name=wf, status="failed")) == [
        "b1-" + wf
    ]
    assert run_ids(get(server, "/telemetry/runs", workflow_name=wf, status="cancelled")) == []
    window = get(
        server,
        "/telemetry/runs",
        workflow_name=wf,
        since=(T0 + timedelta(hours=1)).isoformat(),
        until=(T0 + timedelta(hours=2)).isoformat(),  # exclusive
    )
    assert run_ids(window) == ["b1-" + wf]
    by_day = get(server, "/telemetry/runs", workflow_name=wf, since=T0.date().isoformat())
    assert len(run_ids(by_day)) == 3


def test_a_run_started_twice_is_listed_once_at_its_first_start(server: ApiServer) -> None:
    wf = unique("wf")
    run_id = "twice-" + wf
    post(
        server,
        [
            *a_run(run_id, T0 + timedelta(minutes=3), workflow=wf),
            event("workflow.run_started", T0, run_id=run_id, workflow_name=wf),
        ],
    )
    response = get(server, "/telemetry/runs", workflow_name=wf)
    assert run_ids(response) == [run_id]
    assert response.json()["runs"][0]["started_at"] == T0.isoformat()


def test_pages_are_stable_while_runs_are_inserted_between_fetches(server: ApiServer) -> None:
    """No run that existed at the first fetch is skipped or repeated, although newer runs
    (and runs started long ago, whose events arrive late) are inserted between pages."""
    wf = unique("wf")
    existing: list[str] = []
    events: list[dict[str, Any]] = []
    for n in range(23):
        # Three runs share each start time: the run id breaks the tie, also across pages.
        run_id = f"{wf}-{n:02d}"
        existing.append(run_id)
        events += a_run(run_id, T0 + timedelta(seconds=n // 3), workflow=wf, steps=[0.01])
    post(server, events)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        response = get(server, "/telemetry/runs", workflow_name=wf, limit=4, cursor=cursor)
        seen += run_ids(response)
        pages += 1
        late = [f"{wf}-new-{pages}", f"{wf}-late-{pages}"]
        post(
            server,
            a_run(late[0], datetime.now(UTC), workflow=wf)
            + a_run(late[1], T0 + timedelta(seconds=3, microseconds=pages), workflow=wf),
        )
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
        assert pages < 50, "the pages never end"
    assert len(seen) == len(set(seen)), "a run was repeated"
    assert [r for r in seen if r in existing] == sorted(
        existing, key=lambda r: (int(r.rsplit("-", 1)[1]) // 3, r), reverse=True
    )
    assert pages == math.ceil(len(seen) / 4)


# --- one run -------------------------------------------------------------------------------


@pytest.fixture
def telemetry(server: ApiServer, tmp_path: Path) -> Iterator[TelemetryClient]:
    client = TelemetryClient(
        endpoint=server.base_url,
        api_key=TEST_API_KEYS[0],
        spool_dir=tmp_path / "spool",
        flush_interval_s=0.1,
        timeout_s=5.0,
    )
    yield client
    client.shutdown(timeout=5)


@pytest.fixture
def artifacts(migrated_db_url: str, tmp_path: Path) -> Iterator[ArtifactService]:
    service = ArtifactService(
        engine=create_engine(migrated_db_url), store=FileStore(tmp_path / "store"), owns_engine=True
    )
    yield service
    service.close()


def test_a_run_shows_its_steps_state_changes_learning_events_and_artifacts(
    server: ApiServer, telemetry: TelemetryClient, artifacts: ArtifactService
) -> None:
    wf, run_id, item = unique("pipeline"), unique("run"), unique("ITEM")
    topics = ["pricing", "market risks"]
    # model-b (review) has no price: its steps' cost is unknown.
    graph = instrument(
        build_pipeline(),
        workflow_name=wf,
        agent_roles=PIPELINE_ROLES,
        prices={"model-a": PRICES["model-a"]},
        client=telemetry,
    )
    graph.invoke(
        {"item_id": item, "status": "new", "topics": topics},
        config={"metadata": {"run_id": run_id}},
    )
    assert telemetry.flush(timeout=30)
    post(
        server,
        [
            event(
                "learning.evaluation_scored",
                datetime.now(UTC),
                run_id=run_id,
                payload={
                    "target_type": "run",
                    "target_id": run_id,
                    "evaluator": "rubric",
                    "metric": "quality",
                    "score": 0.8,
                },
            ),
            event(  # another run's: not shown
                "learning.feedback_received",
                datetime.now(UTC),
                run_id=unique("run"),
                payload={"target_type": "run", "target_id": "x", "rating": 1},
            ),
        ],
    )
    draft = artifacts.write_artifact(
        type="draft", content="# Draft\nbody", extracted_fields={"title": "The draft"}
    )
    artifacts.link(draft.artifact_id, 1, link_type="output", run_id=run_id, item_id=item)
    notes = artifacts.write_artifact(type="notes", content="notes")
    artifacts.link(notes.artifact_id, 1, link_type="input", run_id=run_id)
    other = artifacts.write_artifact(type="notes", content="not this run's")
    artifacts.link(other.artifact_id, 1, link_type="input", run_id=unique("run"))

    response = get(server, f"/telemetry/runs/{run_id}")
    assert response.status_code == 200, response.text
    body = response.json()

    expected = pipeline_steps(topics=topics)
    steps = body["steps"]
    assert sorted((s["node"], s["step"]) for s in steps) == sorted((e[0], e[1]) for e in expected)
    assert [s["step"] for s in steps] == sorted(s["step"] for s in steps)  # in time order
    research = [s for s in steps if s["node"] == "research"]
    assert len(research) == 2  # the fan-out: two executions of one node at one step
    assert {s["step"] for s in research} == {3}
    assert {(s["tokens_in"], s["tokens_out"]) for s in research} == {
        (e[2], e[3]) for e in expected if e[0] == "research"
    }
    assert all(s["attempt"] == 1 and s["status"] == "ok" for s in steps)
    reviews = [s for s in steps if s["node"] == "review"]
    assert [(s["cost_usd"], s["cost_unknown"], s["models"]) for s in reviews] == [
        (None, True, ["model-b"])
    ] * 2
    assert {s["tokens_cached_in"] for s in reviews} == {REVIEW_CACHED}
    assert {s["agent_role"] for s in research} == {"researcher"}
    known = sum(e[5] for e in expected if e[4] == "model-a")
    totals = body["run"]["totals"]
    assert totals["steps"] == len(expected)
    assert totals["cost_unknown_steps"] == 2
    assert totals["cost_usd"] == pytest.approx(known)
    assert totals["tokens_in"] == sum(e[2] for e in expected)
    assert body["run"]["status"] == "succeeded"
    assert body["run"]["workflow_name"] == wf
    assert body["run"]["item_id"] == item

    changes = [(c["from_state"], c["to_state"], c["node"]) for c in body["state_changes"]]
    assert changes == pipeline_transitions()
    assert {c["item_id"] for c in body["state_changes"]} == {item}

    (learning,) = body["learning_events"]
    assert learning["event_name"] == "learning.evaluation_scored"
    assert learning["payload"]["score"] == 0.8

    linked = {a["artifact_id"]: a for a in body["artifacts"]}
    assert set(linked) == {draft.artifact_id, notes.artifact_id}
    assert linked[draft.artifact_id] | {"linked_at": None} == {
        "artifact_id": draft.artifact_id,
        "version": 1,
        "type": "draft",
        "link_type": "output",
        "item_id": item,
        "title": "The draft",
        "mime_type": "text/plain; charset=utf-8",
        "size_bytes": len("# Draft\nbody"),
        "linked_at": None,
    }
    assert linked[notes.artifact_id]["title"] is None
    assert body["truncated"] is False


def test_each_retry_attempt_is_a_step_with_its_attempt_number(
    server: ApiServer, telemetry: TelemetryClient
) -> None:
    run_id = unique("run")
    graph = instrument(build_retrying(2), workflow_name=unique("retry"), client=telemetry)
    graph.invoke({"item_id": "R", "status": "new"}, config={"metadata": {"run_id": run_id}})
    assert telemetry.flush(timeout=30)
    steps = get(server, f"/telemetry/runs/{run_id}").json()["steps"]
    assert [(s["node"], s["attempt"], s["status"]) for s in steps] == [
        ("flaky", 1, "error"),
        ("flaky", 2, "error"),
        ("flaky", 3, "ok"),
    ]
    assert steps[0]["error_type"] == "ConnectionError"


def test_a_run_without_a_start_event_is_found_by_id_but_not_listed(server: ApiServer) -> None:
    wf = unique("wf")
    run_id = "headless-" + wf
    ids = {"run_id": run_id, "workflow_name": wf}
    post(server, [step(T0, node="n", step=1, cost=0.5, **ids)])
    assert run_ids(get(server, "/telemetry/runs", workflow_name=wf)) == []
    run = get(server, f"/telemetry/runs/{run_id}").json()["run"]
    assert run["start_recorded"] is False
    assert run["started_at"] == T0.isoformat()
    assert run["totals"]["steps"] == 1


def test_an_unknown_run_is_404_with_a_clear_body(server: ApiServer) -> None:
    response = get(server, f"/telemetry/runs/{unique('nope')}")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found"
    assert "no stored event carries this run_id" in body["detail"]


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "W10"}, "cursor"),  # base64 of [] : decodes, but is no cursor
        ({"cursor": "eyJhIjoxfQ"}, "cursor"),  # {"a":1}
        ({"status": "done"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-06-01T12:00:00"}, "since"),  # no time zone
        ({"until": "2026-02-30"}, "until"),
        ({"since": "2026-06-02", "until": "2026-06-01"}, "since"),
        ({"workflow_name": "x" * 201}, "workflow_name"),
        ({"item_id": "a\x00b"}, "item_id"),
        ({"wokflow_name": "typo"}, "wokflow_name"),
    ],
)
def test_bad_list_parameters_are_422_with_a_field_error(
    server: ApiServer, params: dict[str, str], field: str
) -> None:
    response = get(server, "/telemetry/runs", **params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_parameters"
    assert ["query", field] in [e["loc"] for e in body["errors"]]
    assert all(set(e) == {"loc", "msg", "type"} for e in body["errors"])


def test_every_bad_parameter_is_reported_at_once_and_repeats_are_refused(
    server: ApiServer,
) -> None:
    response = get(server, "/telemetry/runs", limit="0", status="x", bogus="1")
    assert {tuple(e["loc"]) for e in response.json()["errors"]} == {
        ("query", "limit"),
        ("query", "status"),
        ("query", "bogus"),
    }
    repeated = httpx.get(f"{server.base_url}/telemetry/runs?limit=2&limit=3", headers=READ)
    assert repeated.status_code == 422
    assert repeated.json()["errors"][0]["msg"] == "is given more than once"


def test_a_too_long_run_id_is_422_on_the_path(server: ApiServer) -> None:
    response = get(server, f"/telemetry/runs/{'r' * 201}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "run_id"]


# --- scopes --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/telemetry/runs", "/telemetry/runs/x", "/telemetry/usage"])
def test_an_ingest_key_cannot_read(server: ApiServer, path: str) -> None:
    response = httpx.get(f"{server.base_url}{path}", headers=INGEST)
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "'read' scope (READ_API_KEYS)" in response.json()["detail"]
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert httpx.get(f"{server.base_url}{path}", headers=headers).status_code == 401


def test_a_read_key_cannot_write(server: ApiServer) -> None:
    one = event("workflow.run_started", T0, run_id=unique("run"))
    for path, body in (("/telemetry/events", one), ("/telemetry/events/batch", {"events": [one]})):
        response = httpx.post(f"{server.base_url}{path}", json=body, headers=READ)
        assert response.status_code == 403, response.text
        assert "'ingest' scope (INGEST_API_KEYS)" in response.json()["detail"]
    assert get(server, f"/telemetry/runs/{one['run_id']}").status_code == 404  # not stored


def test_run_totals_count_unknown_costs_exactly_as_the_aggregates_do(
    server: ApiServer, migrated_db_url: str
) -> None:
    """A run's totals and the daily aggregates are two SQL texts: both must call the
    same steps' costs unknown (it says so, or gives no number) and sum the rest."""
    wf = unique("wf")
    ids = {"run_id": "edge-" + wf, "workflow_name": wf}
    day = datetime(2026, 6, 3, tzinfo=UTC)
    post(
        server,
        [
            event("workflow.run_started", day, **ids),
            step(day, node="a", step=1, cost=0.5, **ids),  # known
            step(day, node="a", step=2, cost=0.25, unknown=True, **ids),  # says unknown
            step(day, node="a", step=3, cost=None, unknown=False, **ids),  # gives none
            step(day, node="a", step=4, cost=0.0, **ids),  # free, and known
        ],
    )
    totals = get(server, "/telemetry/runs", workflow_name=wf).json()["runs"][0]["totals"]
    lo, hi = day_bounds(day.date())
    with psycopg.connect(migrated_db_url) as conn:
        rows = conn.execute(
            f"SELECT sum(cost_usd), sum(cost_unknown_steps), sum(events), sum(tokens_in) "
            f"FROM ({GROUPED_SQL}) g WHERE workflow_name = %(wf)s AND event_name = %(step)s",
            {"day": day.date(), "lo": lo, "hi": hi, "wf": wf, "step": STEP_EVENT},
        ).fetchone()
    assert rows is not None
    assert (totals["cost_usd"], totals["cost_unknown_steps"]) == (0.5, 2)
    assert (Decimal(str(totals["cost_usd"])), totals["cost_unknown_steps"]) == rows[:2]
    assert (totals["steps"], totals["tokens_in"]) == rows[2:]


def test_a_step_shows_its_calls_and_the_run_keeps_the_estimate_it_emitted(
    server: ApiServer, migrated_db_url: str
) -> None:
    """Per-call usage in the run detail, as the event reported it; the run's cost stays
    the emitted estimate even where a price would give another (runs are raw events)."""
    wf = unique("wf")
    ids = {"run_id": "calls-" + wf, "workflow_name": wf}
    calls = [
        call("m-a", 100, 40, tokens_cached_in=30, tokens_cache_write=20, tokens_reasoning=10),
        call("m-b", 5, 5, cost_usd_reported=0.02),
    ]
    post(
        server,
        [
            event("workflow.run_started", T0, **ids),
            v2_step(T0 + timedelta(seconds=1), "ask", "m-a,m-b", calls, 0.25, **ids),
            step(T0 + timedelta(seconds=2), node="old", step=2, cost=0.5, **ids),  # no calls
        ],
    )
    body = get(server, f"/telemetry/runs/calls-{wf}").json()
    with_calls, without = body["steps"]
    assert with_calls["calls"] == [
        {"model": "m-a", "provider": "acme", "tokens_in": 100, "tokens_cached_in": 30,
         "tokens_cache_write": 20, "tokens_out": 40, "tokens_reasoning": 10,
         "usage_reported": True, "cost_usd_reported": None},
        {"model": "m-b", "provider": "acme", "tokens_in": 5, "tokens_cached_in": 0,
         "tokens_cache_write": 0, "tokens_out": 5, "tokens_reasoning": 0,
         "usage_reported": True, "cost_usd_reported": 0.02},
    ]  # fmt: skip
    assert (with_calls["cost_usd"], with_calls["models"]) == (0.25, ["m-a", "m-b"])
    assert without["calls"] is None  # event_version 1: totals only
    assert body["run"]["totals"]["cost_usd"] == 0.75  # the estimates: 0.25 + 0.5
