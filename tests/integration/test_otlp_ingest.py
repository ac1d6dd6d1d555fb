"""POST /v1/traces with real OpenTelemetry clients against a real API and Postgres.

The exporter is the OpenTelemetry SDK's own ``OTLPSpanExporter`` (protobuf over HTTP)
behind a ``BatchSpanProcessor``; OTLP/JSON is posted as the spec spells it (the Python
SDK has no JSON exporter); every response is parsed with ``opentelemetry-proto``.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from tests.support.otel_spans import SpanRecorder, agent_run, export_json, export_request
from tests.support.servers import TEST_API_KEYS, ApiServer, free_port, run_api

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def db(migrated_db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(migrated_db_url, autocommit=True) as conn:
        yield conn


def events_of(db: psycopg.Connection, run_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = db.execute(
        "SELECT event_name, coalesce(item_id, ''), payload FROM telemetry.workflow_events "
        "WHERE run_id = %s ORDER BY event_id",
        [run_id],
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def exporter(api: ApiServer, **options: Any) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=f"{api.base_url}/v1/traces",
        headers={"Authorization": f"Bearer {TEST_API_KEYS[0]}"},
        **options,
    )


def parse(response: httpx.Response) -> ExportTraceServiceResponse:
    message = ExportTraceServiceResponse()
    if response.headers["content-type"].startswith("application/json"):
        json_format.Parse(response.text, message)
    else:
        message.ParseFromString(response.content)
    return message


def test_batch_span_processor_export_lands_once_with_nodes_tokens_and_ids(
    api_server: ApiServer, db: psycopg.Connection
) -> None:
    recorder = SpanRecorder(**{"wdp.item_id": "item-otel-1"})
    processor = BatchSpanProcessor(exporter(api_server))
    recorder.provider.add_span_processor(processor)
    agent_run(recorder, fail="writer")
    assert processor.force_flush(10_000)
    spans = recorder.spans()
    run_id = spans[0].context.trace_id.to_bytes(16, "big").hex()
    stored = events_of(db, run_id)
    names = [name for name, _, _ in stored]
    assert sorted(names) == sorted(
        ["workflow.run_started", "workflow.step_completed", "workflow.step_completed",
         "workflow.run_completed"]
    )  # fmt: skip
    assert {item for _, item, _ in stored} == {"item-otel-1"}
    steps = {p["node"]: p for name, _, p in stored if name == "workflow.step_completed"}
    assert set(steps) == {"planner", "writer"}
    assert steps["planner"]["status"] == "ok"
    assert steps["writer"]["status"] == "error"
    assert steps["writer"]["error_type"] == "ValueError"
    assert steps["planner"]["tokens_in"] == 100
    assert steps["planner"]["tokens_out"] == 20
    (call,) = steps["planner"]["calls"]
    assert call["model"] == "gpt-4o-mini"
    assert call["provider"] == "openai"
    run = next(p for name, _, p in stored if name == "workflow.run_completed")
    assert run["steps"] == 2
    assert run["tokens_in"] == 200
    assert run["status"] == "succeeded"
    # The chat span's authorization header attribute is not stored anywhere.
    assert "sk-secret" not in json.dumps([p for _, _, p in stored])

    # The same spans exported again (an exporter's retry): stored once, success.
    assert exporter(api_server).export(spans) is SpanExportResult.SUCCESS
    assert len(events_of(db, run_id)) == 4
    processor.shutdown()


def test_json_export_with_gzip_and_x_api_key_then_duplicate_and_conflict(
    api_server: ApiServer, db: psycopg.Connection
) -> None:
    recorder = SpanRecorder()
    agent_run(recorder, agents=("solo",), **{"wdp.run_id": "run-otel-json"})
    body = export_json(recorder.spans())
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "x-api-key": TEST_API_KEYS[1],
    }
    url = f"{api_server.base_url}/v1/traces"
    first = httpx.post(url, content=gzip.compress(json.dumps(body).encode()), headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("application/json")
    assert not parse(first).HasField("partial_success")
    assert len(events_of(db, "run-otel-json")) == 3  # run started, one step, run completed

    again = httpx.post(url, content=gzip.compress(json.dumps(body).encode()), headers=headers)
    assert again.status_code == 200
    assert not parse(again).HasField("partial_success")
    assert len(events_of(db, "run-otel-json")) == 3

    # The agent span re-sent with other content: refused, reported per span.
    for span in body["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        if span["name"].startswith("invoke_agent"):
            span["endTimeUnixNano"] = str(int(span["endTimeUnixNano"]) + 5_000_000)
    changed = httpx.post(
        url, content=json.dumps(body), headers={**headers, "Content-Encoding": "identity"}
    )
    assert changed.status_code == 200
    partial = parse(changed).partial_success
    assert partial.rejected_spans == 2  # the step: its agent span and its chat span
    assert "conflict" in partial.error_message
    assert len(events_of(db, "run-otel-json")) == 3


def test_plain_spans_are_skipped_not_stored(api_server: ApiServer, db: psycopg.Connection) -> None:
    recorder = SpanRecorder()
    with recorder.tracer.start_as_current_span("GET /health") as span:
        span.set_attribute("http.request.method", "GET")
        with recorder.tracer.start_as_current_span("SELECT 1"):
            pass
    spans = recorder.spans()
    response = httpx.post(
        f"{api_server.base_url}/v1/traces",
        content=export_request(spans).SerializeToString(),
        headers={**PROTOBUF, **api_server.auth},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not parse(response).HasField("partial_success")
    assert events_of(db, spans[0].context.trace_id.to_bytes(16, "big").hex()) == []


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({**PROTOBUF}, b"\xff\xff\xff", 400),
        ({"Content-Type": "application/json"}, b"{not json", 400),
        ({"Content-Type": "application/json"}, b'{"resourceSpans": [{"scopeSpans": 5}]}', 400),
        (
            {"Content-Type": "application/json"},
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            400,
        ),
        ({**PROTOBUF, "Content-Encoding": "gzip"}, b"not gzip", 400),
        ({"Content-Type": "text/plain"}, b"", 415),
        ({**PROTOBUF, "Content-Encoding": "br"}, b"", 415),
    ],
)
def test_bad_bodies_get_their_status(
    api_server: ApiServer, headers: dict[str, str], body: bytes, status: int
) -> None:
    response = httpx.post(
        f"{api_server.base_url}/v1/traces", content=body, headers={**headers, **api_server.auth}
    )
    assert response.status_code == status, response.text
    # The body is a google.rpc.Status, in JSON for a JSON request, else protobuf.
    error = Status()
    if headers["Content-Type"] == "application/json":
        assert response.headers["content-type"].startswith("application/json")
        json_format.Parse(response.text, error)
    else:
        assert response.headers["content-type"] == "application/x-protobuf"
        error.ParseFromString(response.content)
    assert error.code != 0
    assert error.message


def test_keys_and_size_limit(tmp_path: Path, migrated_db_url: str) -> None:
    extra = {"READ_API_KEYS": "read-only-key", "INGEST_MAX_BATCH_BYTES": "2000"}
    with run_api(migrated_db_url, tmp_path / "api.log", extra_env=extra) as api:
        url = f"{api.base_url}/v1/traces"
        empty = export_request([]).SerializeToString()
        unauthorized = httpx.post(url, content=empty, headers=PROTOBUF)
        assert unauthorized.status_code == 401
        assert unauthorized.headers["www-authenticate"] == "Bearer"
        denied = Status()
        denied.ParseFromString(unauthorized.content)
        assert "missing API key" in denied.message
        wrong = {**PROTOBUF, "x-api-key": "nope"}
        assert httpx.post(url, content=empty, headers=wrong).status_code == 401
        read = {**PROTOBUF, "Authorization": "Bearer read-only-key"}
        assert httpx.post(url, content=empty, headers=read).status_code == 403
        ok = httpx.post(url, content=empty, headers={**PROTOBUF, **api.auth})
        assert ok.status_code == 200
        big = httpx.post(url, content=b"\x0a" * 3000, headers={**PROTOBUF, **api.auth})
        assert big.status_code == 413
        bomb = gzip.compress(b"\x00" * 100_000)
        zipped = {**PROTOBUF, **api.auth, "Content-Encoding": "gzip"}
        assert httpx.post(url, content=bomb, headers=zipped).status_code == 413


def test_exporter_retries_until_a_stopped_api_starts_and_delivers_once(
    tmp_path: Path, migrated_db_url: str, db: psycopg.Connection
) -> None:
    port = free_port("127.0.0.1")
    recorder = SpanRecorder()
    agent_run(recorder, agents=("late",), **{"wdp.run_id": "run-otel-late"})
    sender = OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{port}/v1/traces",
        headers={"Authorization": f"Bearer {TEST_API_KEYS[0]}"},
        timeout=60,
    )
    results: list[SpanExportResult] = []
    thread = threading.Thread(target=lambda: results.append(sender.export(recorder.spans())))
    thread.start()
    time.sleep(1.5)  # the exporter meets a closed port and backs off
    assert not results
    with run_api(migrated_db_url, tmp_path / "api.log", port=port):
        thread.join(60)
        assert results == [SpanExportResult.SUCCESS]
        assert len(events_of(db, "run-otel-late")) == 3


def test_the_readme_environment_configures_the_exporter(
    api_server: ApiServer, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README "Send OpenTelemetry traces": the three variables, and nothing else."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{api_server.base_url}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{TEST_API_KEYS[0]}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    recorder = SpanRecorder()
    agent_run(recorder, agents=("env",), **{"wdp.run_id": "run-otel-env"})
    assert OTLPSpanExporter().export(recorder.spans()) is SpanExportResult.SUCCESS
    assert len(events_of(db, "run-otel-env")) == 3
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-api-key={TEST_API_KEYS[0]}")
    other = SpanRecorder()
    agent_run(other, agents=("env",), **{"wdp.run_id": "run-otel-env-2"})
    assert OTLPSpanExporter().export(other.spans()) is SpanExportResult.SUCCESS
    assert len(events_of(db, "run-otel-env-2")) == 3
