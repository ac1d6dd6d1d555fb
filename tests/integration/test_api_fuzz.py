"""Property-based fuzzing of the ingest API from its own OpenAPI document (schemathesis).

schemathesis loads ``/docs/openapi.json`` from a real ``wdp api`` process (on a real
Postgres) and generates requests for every operation: bodies and parameters that fit the
published contract (positive) and ones that break it (negative), sent with the key of
the operation's scope, with a key of another scope (an ingest key on a read, a read key
on a write), with no key and with a wrong key. Whatever the input, the API must not
answer 5xx, and must answer with a status code its document declares; the read
endpoints' answers must match their published schemas too.

Generation is derandomized with a fixed budget, so a run is repeatable and fast; set
``WDP_FUZZ_EXAMPLES`` to fuzz longer locally.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from sdk.telemetry.values import new_ulid
from tests.integration.read_support import READ_KEY, post, step
from tests.support.servers import TEST_API_KEYS, ApiServer, run_api

EVENTS = "/telemetry/events"
BATCH = "/telemetry/events/batch"
OPS = ("/healthz", "/readyz", "/metrics")
RUNS, RUN, USAGE = "/telemetry/runs", "/telemetry/runs/{run_id}", "/telemetry/usage"
READS = (RUNS, RUN, USAGE)
SEEDED_RUN = "0"  # the first run id hypothesis generates: some detail requests find it
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

EXAMPLES = int(os.environ.get("WDP_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same examples every run: no flakes, no example database
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),  # big generated bodies are the point
)
CHECKS = [not_a_server_error, status_code_conformance]
READ_CHECKS = [*CHECKS, response_schema_conformance]

# The credentials a request carries: mostly the operation's key, so requests reach
# validation and the database; sometimes none, a wrong one or one of another scope, so
# the guard is fuzzed too.
VALID_KEY, NO_KEY, WRONG_KEY, OTHER_KEY = "valid key", "no key", "wrong key", "other scope"
CREDENTIALS = st.sampled_from([VALID_KEY] * 4 + [NO_KEY, WRONG_KEY, OTHER_KEY])
# The first examples take every kind in turn, so each is sent whatever hypothesis draws.
FIRST_CREDENTIALS = (NO_KEY, WRONG_KEY, OTHER_KEY, VALID_KEY)

# What happens to generated event ids: kept (a random instant, almost never inside the
# live monthly partitions, so the event is refused with 422), replaced by fresh ULIDs
# (now: valid events get stored), one fresh ULID shared by every event of the body
# (in-batch duplicates and conflicts), or the largest ULID the pattern allows.
GENERATED_IDS, FRESH_IDS, SHARED_ID, LAST_ID = "generated", "fresh", "shared", "last"
ID_POLICIES = st.sampled_from([GENERATED_IDS, FRESH_IDS, SHARED_ID, LAST_ID])
LAST_ULID = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"  # 2**48 - 1 ms: in the year 10889


# --- helpers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_server(
    migrated_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """The API with room for the fuzzer's hundreds of wrong keys: with the default
    failed-auth limit its address would soon be refused with 429, valid key or not,
    and the bodies would never reach validation (test_api_hardening tests the limit)."""
    log = tmp_path_factory.mktemp("api") / "api.log"
    env = {"INGEST_AUTH_FAILURE_LIMIT": "10000", "READ_API_KEYS": READ_KEY}
    with run_api(migrated_db_url, log, extra_env=env) as server:
        # Something to read: runs (one of them the seeded id) with known and unknown costs.
        now = datetime.now(UTC)
        events = []
        for run_id in (SEEDED_RUN, "fuzz-run"):
            ids = {"run_id": run_id, "workflow_name": "fuzz", "item_id": "item"}
            events += [
                {
                    "event_id": new_ulid(),
                    "event_name": "workflow.run_started",
                    "ts": now.isoformat(),
                    **ids,
                },
                step(now, node="plan", step=1, cost=0.01, **ids),
                step(now, node="plan", step=2, cost=None, **ids),
            ]
        post(server, events)
        yield server


@pytest.fixture(scope="module")
def api_schema(api_server: ApiServer) -> schemathesis.BaseSchema:
    """The OpenAPI document the running API serves, loaded by schemathesis."""
    return schemathesis.openapi.from_url(f"{api_server.base_url}/docs/openapi.json")


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _credentials(server: ApiServer, credentials: str, method: str = "POST") -> dict[str, str]:
    ingest, read = TEST_API_KEYS[0], READ_KEY
    if credentials in (VALID_KEY, OTHER_KEY):
        own, other = (read, ingest) if method == "GET" else (ingest, read)
        return {"Authorization": f"Bearer {own if credentials == VALID_KEY else other}"}
    if credentials == WRONG_KEY:
        return {"Authorization": "Bearer not-a-key"}
    return {}


def _with_ids(body: Any, policy: str) -> Any:
    if policy == GENERATED_IDS or not isinstance(body, dict):
        return body
    shared = LAST_ULID if policy == LAST_ID else new_ulid()

    def fix(event: Any) -> Any:
        if not isinstance(event, dict) or "event_id" not in event:
            return event
        return {**event, "event_id": new_ulid() if policy == FRESH_IDS else shared}

    if isinstance(body.get("events"), list):
        return {**body, "events": [fix(e) for e in body["events"]]}
    return fix(body)


class _Chosen(requests.auth.AuthBase):
    """The chosen credentials, set on the prepared request itself."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self.headers)
        return request


def _send(
    server: ApiServer, session: requests.Session, case: Case, credentials: str
) -> schemathesis.Response:
    # Whatever Authorization schemathesis generated, send exactly the chosen credentials.
    # Not as ``headers=``: for a negative case whose mutation removed the security header,
    # schemathesis drops Authorization from the headers it sends, even ones passed to
    # call(), so every credential became "no key" (and 403 was never reached). The
    # session's auth hook adds them after that.
    for name in [n for n in (case.headers or {}) if n.lower() == "authorization"]:
        del case.headers[name]
    session.auth = _Chosen(_credentials(server, credentials, case.method.upper()))
    try:
        return case.call(base_url=server.base_url, session=session)
    finally:
        session.auth = None


def _validate(case: Case, response: schemathesis.Response, headers: dict[str, str]) -> None:
    """Raise schemathesis' failure report unless the response is fine."""
    checks = READ_CHECKS if case.path in READS else CHECKS
    case.validate_response(response, checks=checks, headers=headers)


# --- the fuzz -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [
        (EVENTS, "POST", POSITIVE),
        (EVENTS, "POST", NEGATIVE),
        (BATCH, "POST", POSITIVE),
        (BATCH, "POST", NEGATIVE),
        *((op, "GET", POSITIVE) for op in OPS),  # no parameters: nothing to negate
        *((read, "GET", mode) for read in READS for mode in (POSITIVE, NEGATIVE)),
    ],
)
def test_no_server_errors(
    api_server: ApiServer,
    api_schema: schemathesis.BaseSchema,
    session: requests.Session,
    path: str,
    method: str,
    mode: GenerationMode,
) -> None:
    """No generated request, valid or not, with or without a key, gets a 5xx."""
    strategy = api_schema[path][method].as_strategy(generation_mode=mode)
    statuses: collections.Counter[int] = collections.Counter()

    @FUZZ
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(strategy, label="case")
        credentials = data.draw(CREDENTIALS, label="credentials")
        sent = sum(statuses.values())
        if sent < len(FIRST_CREDENTIALS):
            credentials = FIRST_CREDENTIALS[sent]
        if method == "POST":
            case.body = _with_ids(case.body, data.draw(ID_POLICIES, label="ids"))
        sends = 2 if method == "POST" and data.draw(st.booleans(), label="resend") else 1
        for _ in range(sends):  # a resend hits the duplicate / conflict paths
            response = _send(api_server, session, case, credentials)
            statuses[response.status_code] += 1
            _validate(case, response, _credentials(api_server, credentials, method))

    fuzz()
    print(f"{method} {path} ({mode}): statuses {dict(statuses)}")
    assert statuses, "nothing was sent"
    if method == "POST" or path in READS:
        # The guard was fuzzed (no key, a wrong one, another scope's), and authenticated
        # requests got past it.
        assert statuses[401] > 0, statuses
        assert statuses[403] > 0, statuses
        assert sum(n for code, n in statuses.items() if code not in (401, 403)) > 0, statuses
    if path in (RUNS, USAGE) and mode is POSITIVE:
        assert statuses[200] > 0, statuses  # real answers, checked against their schema
    if path in READS and mode is NEGATIVE:
        assert statuses[422] > 0, statuses


def test_generated_valid_events_are_stored(
    api_server: ApiServer, api_schema: schemathesis.BaseSchema, session: requests.Session
) -> None:
    """The fuzzer is not just bouncing off 401/422: schema-valid events get stored (201),
    and the same event sent again is an idempotent duplicate (200)."""
    strategy = api_schema[EVENTS]["POST"].as_strategy(generation_mode=POSITIVE)
    auth = dict(api_server.auth)
    statuses: collections.Counter[int] = collections.Counter()

    @FUZZ
    @given(case=strategy)
    def fuzz(case: Case) -> None:
        case.body = _with_ids(case.body, FRESH_IDS)
        response = _send(api_server, session, case, VALID_KEY)
        statuses[response.status_code] += 1
        _validate(case, response, auth)
        if response.status_code == 201:
            again = _send(api_server, session, case, VALID_KEY)
            _validate(case, again, auth)
            assert again.status_code == 200, (case.body, again.text)
            assert again.json()["status"] == "duplicate"

    fuzz()
    print(f"POST {EVENTS} (valid, fresh ids): statuses {dict(statuses)}")
    assert statuses[201] > 0, f"no generated event was stored: {statuses}"
    assert statuses[401] == 0, statuses


# --- regressions the fuzzer found ---------------------------------------------------------


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "event_id": new_ulid(),
        "event_name": "workflow.run_started",
        "ts": datetime.now(UTC).isoformat(),
        "run_id": "run-1",
        **fields,
    }


# Each once answered 500: an event_id dated after 9999 (datetime cannot hold it) and a
# ts at datetime's limits whose offset pushes it out of range when made UTC.
OUT_OF_RANGE_INPUTS = [
    pytest.param({"event_id": LAST_ULID}, id="event_id-after-9999"),
    pytest.param({"ts": "0001-01-01T00:00:00+01:00"}, id="ts-year-1-offset"),
    pytest.param({"ts": "9999-12-31T23:00:00-05:00"}, id="ts-year-9999-offset"),
]


@pytest.mark.parametrize("fields", OUT_OF_RANGE_INPUTS)
@pytest.mark.parametrize("path", [EVENTS, BATCH])
def test_out_of_range_times_are_422(
    api_server: ApiServer, path: str, fields: dict[str, Any]
) -> None:
    event = _event(**fields)
    body = {"events": [event]} if path == BATCH else event
    response = httpx.post(f"{api_server.base_url}{path}", json=body, headers=api_server.auth)
    assert response.status_code == 422, response.text


def test_resending_a_float_that_jsonb_normalises_is_a_duplicate(api_server: ApiServer) -> None:
    """jsonb stores 2.033294502061387e16 as the decimal 20332945020613870; an exact
    resend must still compare equal (it once was a 409 conflict)."""
    event = _event(
        event_name="workflow.run_completed",
        payload={"status": "failed", "duration_ms": 2.033294502061387e16},
    )
    url = f"{api_server.base_url}{EVENTS}"
    assert httpx.post(url, json=event, headers=api_server.auth).status_code == 201
    again = httpx.post(url, json=event, headers=api_server.auth)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"


def test_event_name_is_required_in_the_published_schema(
    api_schema: schemathesis.BaseSchema,
) -> None:
    schema = api_schema.raw_schema["components"]["schemas"]["StepCompleted"]
    assert "event_name" in schema["required"]
