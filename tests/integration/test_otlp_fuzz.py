"""Random, truncated and mutated OTLP bodies, protobuf and JSON, against a real API:
only 200, 400, 413 or 415 come back, never a 500 (schemathesis cannot fuzz protobuf)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.otel_spans import SpanRecorder, agent_run, export_json, export_request
from tests.support.servers import ApiServer

ALLOWED = {200, 400, 413, 415}


def _valid_export() -> tuple[bytes, bytes]:
    recorder = SpanRecorder(**{"wdp.item_id": "fuzz"})
    agent_run(recorder, agents=("a", "b"), fail="b")
    spans = recorder.spans()
    return export_request(spans).SerializeToString(), json.dumps(export_json(spans)).encode()


PROTO, JSON_BODY = _valid_export()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
# Plausible OTLP/JSON shapes with random leaves: deeper into the parser than noise.
otlp_json = st.fixed_dictionaries(
    {
        "resourceSpans": st.lists(
            st.fixed_dictionaries(
                {
                    "resource": st.fixed_dictionaries({"attributes": json_values}),
                    "scopeSpans": st.lists(
                        st.fixed_dictionaries(
                            {
                                "spans": st.lists(
                                    st.dictionaries(
                                        st.sampled_from(
                                            ["traceId", "spanId", "parentSpanId", "name", "kind",
                                             "startTimeUnixNano", "endTimeUnixNano", "attributes",
                                             "status", "events"]
                                        ),
                                        json_values,
                                    ),
                                    max_size=3,
                                )
                            }
                        ),
                        max_size=2,
                    ),
                }
            ),
            max_size=2,
        )
    }
)  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["noise", "truncated", "mutated", "json", "otlp-json"]))
    media = draw(st.sampled_from(["application/x-protobuf", "application/json"]))
    if kind == "noise":
        return media, draw(st.binary(max_size=400))
    valid = PROTO if media == "application/x-protobuf" else JSON_BODY
    if kind == "truncated":
        return media, valid[: draw(st.integers(0, len(valid)))]
    if kind == "mutated":
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return media, bytes(data)
    value: Any = draw(json_values if kind == "json" else otlp_json)
    return "application/json", json.dumps(value).encode()


@pytest.fixture(scope="module")
def client(api_server: ApiServer) -> httpx.Client:
    with httpx.Client(base_url=api_server.base_url, headers=api_server.auth, timeout=30) as c:
        yield c


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies(), zipped=st.booleans())
def test_otlp_bodies_never_get_a_server_error(
    client: httpx.Client, body: tuple[str, bytes], zipped: bool
) -> None:
    media, content = body
    headers = {"Content-Type": media}
    if zipped:
        headers["Content-Encoding"] = "gzip"
        content = gzip.compress(content)
    response = client.post("/v1/traces", content=content, headers=headers)
    assert response.status_code in ALLOWED, (response.status_code, response.text, content[:200])
    if response.status_code >= 400:
        assert "Traceback" not in response.text
