"""OpenInference's LangChain instrumentation on a real LangGraph graph, exported with
the OpenTelemetry SDK's OTLP/HTTP exporter to a real API: the stored steps are the
graph's nodes, with the tokens the fake chat model reported, under one run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.support.langgraph_graphs import build_pipeline, pipeline_steps
from tests.support.otel_spans import SpanRecorder
from tests.support.servers import TEST_API_KEYS, ApiServer


@pytest.fixture
def recorder() -> Iterator[SpanRecorder]:
    recorder = SpanRecorder(**{"wdp.workflow_name": "pipeline-otel"})
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=recorder.provider)
    try:
        yield recorder
    finally:
        instrumentor.uninstrument()


def test_langgraph_run_traced_by_openinference_lands_as_its_steps(
    recorder: SpanRecorder, api_server: ApiServer, migrated_db_url: str
) -> None:
    processor = BatchSpanProcessor(
        OTLPSpanExporter(
            endpoint=f"{api_server.base_url}/v1/traces",
            headers={"Authorization": f"Bearer {TEST_API_KEYS[0]}"},
        )
    )
    recorder.provider.add_span_processor(processor)
    build_pipeline().invoke({"item_id": "item-oi", "topics": ["alpha", "beta"]})
    assert processor.force_flush(20_000)
    processor.shutdown()
    (root,) = [s for s in recorder.spans() if s.parent is None]
    run_id = root.context.trace_id.to_bytes(16, "big").hex()

    with psycopg.connect(migrated_db_url) as db:
        rows = db.execute(
            "SELECT event_name, workflow_name, payload FROM telemetry.workflow_events "
            "WHERE run_id = %s",
            [run_id],
        ).fetchall()
    names = [r[0] for r in rows]
    assert names.count("workflow.run_started") == 1
    assert names.count("workflow.run_completed") == 1
    assert {r[1] for r in rows} == {"pipeline-otel"}
    steps: list[dict[str, Any]] = [r[2] for r in rows if r[0] == "workflow.step_completed"]
    got = sorted((s["node"], s["step"], s["tokens_in"], s["tokens_out"], s["model"]) for s in steps)
    expected = sorted(
        (node, step, tin, tout, model)
        for node, step, tin, tout, model, _ in pipeline_steps(["alpha", "beta"])
    )
    assert got == expected
    review = next(s for s in steps if s["node"] == "review")
    (call,) = review["calls"]
    assert call["tokens_cached_in"] > 0  # the fake's cache reads, as OpenInference names them
    completed = next(r[2] for r in rows if r[0] == "workflow.run_completed")
    assert completed["tokens_in"] == sum(e[2] for e in expected)
    assert completed["status"] == "succeeded"
