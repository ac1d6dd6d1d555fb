"""Where the API's CPU goes per event, in this process: each step the ingest endpoints
run on a request, timed alone (best of 5) on the benchmark's own events. The rest of
the API CPU the phases measure is the framework, the driver and the group commit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from benchmarks.harness import best_of
from benchmarks.ingest.events import BATCH_SIZE, dumps, make_events, run_id
from ingest_api.auth import KeyRing, Scope
from ingest_api.parsing import check_event
from ingest_api.store import EventRow
from sdk.db.partitions import Month
from sdk.telemetry.events import parse_event
from sdk.telemetry.values import json_text_is_plain


def _best(fn: Callable[[], Any], per: int) -> float:
    return best_of(fn)[0] / per * 1e6


def stage_costs() -> dict[str, tuple[float, float]]:
    """µs per event on the batch path (a 500-event body) and per request on the single
    path (one event per body), for each step."""
    events = make_events(BATCH_SIZE, run_id("stages"))
    body = dumps({"events": events})
    singles = [dumps(e) for e in events]
    months = [Month.current().plus(-1), Month.current(), Month.current().plus(1)]
    decoded = json.loads(body)["events"]
    models = [parse_event(e, prescreened=True) for e in decoded]
    ring = KeyRing(((hashlib.sha256(b"key").digest(), frozenset({Scope.INGEST})),))
    n = len(events)
    # Per event either way: the batch path validates and builds rows one event at a time.
    validate = _best(lambda: [parse_event(e, prescreened=True) for e in decoded], n)
    rows = _best(lambda: [EventRow.from_event(m) for m in models], n)
    checked = _best(
        lambda: [check_event(i, e, months, prescreened=True) for i, e in enumerate(decoded)], n
    )
    auth = _best(lambda: [ring.scopes_of(b"key") for _ in range(n)], n)
    return {
        "JSON decode (json.loads)": (
            _best(lambda: json.loads(body), n),
            _best(lambda: [json.loads(s) for s in singles], n),
        ),
        "raw-JSON screen (json_text_is_plain)": (
            _best(lambda: json_text_is_plain(body), n),
            _best(lambda: [json_text_is_plain(s) for s in singles], n),
        ),
        "validation (parse_event, screened)": (validate, validate),
        "row building (EventRow.from_event)": (rows, rows),
        "validation + row + window (check_event)": (checked, checked),
        "auth (one key check per request)": (auth / BATCH_SIZE, auth),
    }
