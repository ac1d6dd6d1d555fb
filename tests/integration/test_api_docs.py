"""What the API publishes about itself in its OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from tests.support.servers import ApiServer


@pytest.fixture(scope="module")
def spec(api_server: ApiServer) -> dict:
    return httpx.get(f"{api_server.base_url}/docs/openapi.json").json()


def test_the_event_id_description_states_the_partition_rule(spec: dict) -> None:
    """Clients and fuzzers reading the schema learn that not every ULID is accepted."""
    for name in ("RunStarted", "StepCompleted", "PolicyUpdated"):
        description = spec["components"]["schemas"][name]["properties"]["event_id"]["description"]
        assert "live partition" in description
        assert "422" in description
        assert "outside_partitions" in description


def test_ts_is_published_as_an_rfc_3339_string(spec: dict) -> None:
    ts = spec["components"]["schemas"]["RunStarted"]["properties"]["ts"]
    assert ts["type"] == "string"
    assert ts["format"] == "date-time"
    assert "RFC 3339" in ts["description"]


def test_key_failures_and_their_limit_are_documented(spec: dict) -> None:
    for path in ("/telemetry/events", "/telemetry/events/batch"):
        assert {"401", "429"} <= spec["paths"][path]["post"]["responses"].keys()
    assert {"200", "401", "429", "503"} <= spec["paths"]["/readyz"]["get"]["responses"].keys()
    assert {"200", "401", "429"} <= spec["paths"]["/metrics"]["get"]["responses"].keys()
