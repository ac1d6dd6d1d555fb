"""What the API publishes about itself: the OpenAPI document and the Swagger UI page."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.servers import ApiServer

MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


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


@pytest.mark.parametrize("page", ["/docs", "/docs/swagger"])
def test_swagger_ui_is_served_entirely_by_the_api(api_server: ApiServer, page: str) -> None:
    """/docs works offline: every script, stylesheet and icon it loads comes from the
    API itself, and the page names no other host."""
    response = httpx.get(f"{api_server.base_url}{page}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html, re.findall(r"\S*://\S*", html)
    urls = re.findall(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["']([^"']+)["']""", html)
    assert len(urls) >= 4, html[:2000]  # bundle, preset, css, favicon
    assert "SwaggerUIBundle" in html
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = httpx.get(f"{api_server.base_url}{url}")
        assert asset.status_code == 200, url
        expected = MEDIA_TYPES[url[url.rindex(".") :]]
        assert asset.headers["content-type"].startswith(expected), (url, asset.headers)
        assert len(asset.content) > 500


def test_only_the_pages_own_assets_are_served(api_server: ApiServer) -> None:
    for name in ("index.html", "..%2Fpyproject.toml", "swagger-ui.js.map", "nope.js"):
        response = httpx.get(f"{api_server.base_url}/docs/assets/{name}")
        assert response.status_code == 404, name


READ_PARAMETERS = {
    "/telemetry/runs": {"workflow_name", "item_id", "status", "since", "until", "limit", "cursor"},
    "/telemetry/runs/{run_id}": {"run_id"},
    "/telemetry/usage": {"from", "to", "group_by"},
}


@pytest.mark.parametrize("path", sorted(READ_PARAMETERS))
def test_the_read_endpoints_are_documented_with_their_parameters_and_answers(
    spec: dict, path: str
) -> None:
    operation = spec["paths"][path]["get"]
    assert {p["name"] for p in operation["parameters"]} == READ_PARAMETERS[path]
    assert all(p.get("description") for p in operation["parameters"])
    assert {"200", "401", "403", "422", "429", "503"} <= operation["responses"].keys()
    assert operation["security"] == [{"bearer": []}]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["type"] == "object"
    assert answer["properties"]


def test_the_documented_figures_say_unknown_costs_are_counted(spec: dict) -> None:
    runs = spec["paths"]["/telemetry/runs"]["get"]["responses"]["200"]["content"]
    totals = runs["application/json"]["schema"]["properties"]["runs"]["items"]["properties"]
    assert "cost_unknown_steps" in totals["totals"]["properties"]
    usage = spec["paths"]["/telemetry/usage"]["get"]["responses"]["200"]["content"]
    figures = usage["application/json"]["schema"]["properties"]["totals"]["properties"]
    assert "never $0" in figures["cost_unknown_calls"]["description"]
    assert "cost_unknown_steps" not in figures  # unknown is per call in the usage report
    assert "one aggregate row" in figures["duration_p50_ms"]["description"]
    assert "404" in spec["paths"]["/telemetry/runs/{run_id}"]["get"]["responses"]


def test_the_priced_and_the_emitted_cost_are_told_apart(spec: dict) -> None:
    """The usage report's cost is priced (by source); a run's is what its steps emitted."""
    usage = spec["paths"]["/telemetry/usage"]["get"]["responses"]["200"]["content"]
    figures = usage["application/json"]["schema"]["properties"]["totals"]["properties"]
    assert "priced by the platform" in figures["cost_usd"]["description"]
    assert set(figures["cost_usd_by_source"]["required"]) == {"computed", "reported", "estimate"}
    for kind in ("calls", "tokens_cache_write", "tokens_reasoning"):
        assert figures[kind]["description"], kind
    runs = spec["paths"]["/telemetry/runs"]["get"]["responses"]["200"]["content"]
    totals = runs["application/json"]["schema"]["properties"]["runs"]["items"]["properties"]
    assert "emitted" in totals["totals"]["properties"]["cost_usd"]["description"]
    run = spec["paths"]["/telemetry/runs/{run_id}"]["get"]["responses"]["200"]["content"]
    step = run["application/json"]["schema"]["properties"]["steps"]["items"]["properties"]
    assert "emitted" in step["cost_usd"]["description"]
    call = step["calls"]["items"]["properties"]
    assert {"model", "provider", "tokens_cache_write", "tokens_reasoning"} <= set(call)
    assert "cost_usd_reported" in call
