"""From request bytes to validated event rows, with a precise error for every defect.

The body is decoded here rather than by Litestar so each kind of bad input gets the
status the contract promises: 415 for the wrong media type or encoding, 413 for a
body over the limit (also after gunzip, so a small compressed bomb cannot expand
unchecked), 400 for bytes that are not JSON, 422 for JSON that is not a valid event.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from litestar import Request
from litestar.types import Empty
from litestar.utils.scope.state import ScopeState
from pydantic import ValidationError

from ingest_api.errors import (
    BodyTooLarge,
    ClientDisconnected,
    MalformedJson,
    StoreUnavailable,
    UnsupportedMediaType,
)
from ingest_api.headers import header
from ingest_api.store import EventRow, EventStore
from sdk.db.partitions import Month, describe_window
from sdk.telemetry.events import EVENT_TYPE_BY_NAME, parse_event
from sdk.telemetry.values import MAX_DEPTH, json_text_is_plain, printable

JSON_MEDIA_TYPES = {"application/json"}


@dataclass(slots=True)
class Checked:
    """One event after validation: a row to store, or the errors that rejected it."""

    index: int
    event_id: str | None
    row: EventRow | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    # The month of a valid event refused only for having no live partition.
    outside_month: Month | None = None

    @property
    def reason(self) -> str:
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in self.errors
        )


@dataclass(frozen=True, slots=True)
class Body:
    """A decoded request body; ``plain`` if its text passed ``json_text_is_plain``."""

    data: Any
    plain: bool


def decode_body(
    raw: bytes, *, content_type: str | None, content_encoding: str | None, limit: int
) -> Body:
    """Check the media type and encoding, gunzip within ``limit``, and parse JSON."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type must be application/json (got {media_type or 'none'!r})"
        )
    raw = decompress(raw, content_encoding=content_encoding, limit=limit)
    try:
        # Strict UTF-8 (json.loads would also guess UTF-16/32, whose bytes the NUL and
        # surrogate screen below cannot read).
        data = _DECODER.decode(raw.decode("utf-8"))
    except RecursionError:
        _malformed(f"JSON nesting is deeper than this server parses (limit {MAX_DEPTH})")
    except (UnicodeDecodeError, ValueError) as exc:
        _malformed(f"body is not valid JSON: {exc}")
    return Body(data, json_text_is_plain(raw))


def _malformed(detail: str) -> NoReturn:
    raise MalformedJson(detail) from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads with an option builds a decoder per call (~2 us in situ).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decompress(raw: bytes, *, content_encoding: str | None, limit: int) -> bytes:
    """The body as sent, gunzipped within ``limit`` for ``Content-Encoding: gzip``;
    415 for any other encoding (every ingest endpoint accepts the same two)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        return gunzip(raw, limit=limit)
    if encoding != "identity":
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported: use gzip or none"
        )
    return raw


def gunzip(raw: bytes, *, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise MalformedJson(f"body is not valid gzip: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge(f"body is larger than {limit} bytes after gunzip")
    if not inflater.eof:
        raise MalformedJson("body is truncated gzip")
    if inflater.unused_data:
        raise MalformedJson("body has data after the end of the gzip stream")
    return data


def check_event(
    index: int, data: Any, live_months: Sequence[Month], *, prescreened: bool = False
) -> Checked:
    """Validate one decoded event against the contract and the live partitions.

    ``prescreened``: the body passed ``json_text_is_plain`` (see decode_body's caller).
    """
    event_id = data.get("event_id") if isinstance(data, dict) else None
    checked = Checked(index, event_id if isinstance(event_id, str) else None)
    if not isinstance(data, dict):
        checked.errors.append(_error((), "an event must be a JSON object", "type_error"))
        return checked
    try:
        event = parse_event(data, prescreened=prescreened)
    except ValidationError as exc:
        checked.errors.extend(_pydantic_errors(exc))
        return checked
    checked.event_id = event.event_id
    return _in_window(checked, EventRow.from_event(event), live_months)


def check_row(index: int, row: EventRow, live_months: Sequence[Month]) -> Checked:
    """An event already made a row by a trusted builder (``ingest_api.otlp.rows``):
    only the live partitions are left to check."""
    return _in_window(Checked(index, row.event_id), row, live_months)


def _in_window(checked: Checked, row: EventRow, live_months: Sequence[Month]) -> Checked:
    if (month := Month.of(row.event_time)) not in live_months:
        checked.outside_month = month
        checked.errors.append(
            _error(
                ("event_id",),
                f"the time in event_id ({row.event_time.isoformat()}) is outside the live "
                f"event partitions: {describe_window(live_months)}",
                "outside_partitions",
            )
        )
        return checked
    checked.row = row
    return checked


def _error(loc: tuple[str | int, ...], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": type_}


def _pydantic_errors(exc: ValidationError) -> list[dict[str, Any]]:
    try:
        details = exc.errors(include_url=False, include_input=False)
    except Exception:  # pydantic could not render its own message; never turn that into a 500
        return [_error((), "the event is invalid", "invalid")]
    errors = []
    for err in details:
        # Keys of the client's JSON end up in locations: escape what is not valid text.
        where = err["loc"]
        msg = err["msg"]
        inner = err.get("ctx", {}).get("loc") if err["type"] == "unstorable_value" else None
        if inner is not None:  # the walk found it inside the value: say where, like pydantic
            where = (*where, *inner)
            msg = err["ctx"]["message"]
        loc = [p if isinstance(p, int) else printable(p) for p in where]
        if loc and loc[0] in EVENT_TYPE_BY_NAME:  # the discriminator tag, not a field
            loc = loc[1:]
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc = ["event_name"]
            msg = (
                "missing" if err["type"] == "union_tag_not_found" else "unknown event name"
            ) + f"; expected one of: {', '.join(EVENT_TYPE_BY_NAME)}"
        errors.append(_error(tuple(loc), printable(msg), err["type"]))
    return errors


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it (or its Content-Length) exceeds ``limit``.

    Read from the ASGI ``receive`` itself: ``request.stream()`` first parses every
    header into Litestar's multidict to learn the Content-Length that is checked here
    anyway (~5 us of a single event's API CPU, docs/benchmarks.md, issue 18).
    """
    state = ScopeState.from_scope(request.scope)
    if state.body is not Empty:  # read already (request.body(), middleware): receive is spent
        if len(state.body) > limit:
            raise BodyTooLarge(f"body is larger than the limit of {limit} bytes")
        return state.body
    announced = header(request, "content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise BodyTooLarge(f"body is larger than the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":  # http.disconnect, the only other one
            raise ClientDisconnected("the client disconnected before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            # Kept where request.body() looks, so a later reader gets it too.
            state.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            return state.body


async def check_all(
    store: EventStore,
    events: list[Any],
    *,
    plain: bool,
    rows: Sequence[EventRow | None] | None = None,
) -> list[Checked]:
    """Validate events against the contract and the live partitions.

    ``rows``: per event, a row a trusted builder already made (only its partition is
    checked), or None to validate that event. An event outside the cached partitions
    makes the cache refresh once per request (a partition may have been created since),
    never once per event.
    """

    def check(index: int, months: Sequence[Month]) -> Checked:
        row = rows[index] if rows is not None else None
        if row is not None:
            return check_row(index, row, months)
        return check_event(index, events[index], months, prescreened=plain)

    months = await store.live_months()
    checked = [check(i, months) for i in range(len(events))]
    outside = [c for c in checked if any(e["type"] == "outside_partitions" for e in c.errors)]
    if outside:
        fresh = await store.live_months(refresh=True)
        if fresh != months:
            for c in outside:
                checked[c.index] = check(c.index, fresh)
        changing = store.changing_months()
        if changing and any(c.outside_month in changing for c in checked):
            # Retention has the month detached and has not yet decided to drop it: a
            # 422 now would make the client discard an event the month may take back.
            raise StoreUnavailable(
                "the partition of an event's month is being detached by retention; retry",
                retry_after_s=5,
            )
    return checked
