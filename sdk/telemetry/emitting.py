"""What every builder does once its payload is gathered: envelope, correlation, checks, queue.

The eleven ``emit_*`` builders (:mod:`sdk.telemetry.emitters`, generated from the
models) differ only in their payload's fields; this is the one body they share. It
mints the ULID ``event_id`` and ``ts`` from the client's clock, fills the correlation
ids from :func:`~sdk.telemetry.context.correlation` unless given, validates the event -
bad input raises :class:`~sdk.telemetry.errors.InvalidEventError` here, at the call
site - and hands it to the client's queue.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

from pydantic import ValidationError

from sdk.telemetry import context
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.default import get_client
from sdk.telemetry.deferred import DeferredEvent
from sdk.telemetry.errors import InvalidEventError
from sdk.telemetry.events import PRESCREENED, EventBase
from sdk.telemetry.payloads import PayloadDict
from sdk.telemetry.values import flat_values_are_plain, new_ulid

_PLAIN = {PRESCREENED: True}

E = TypeVar("E", bound=EventBase)

Envelope: TypeAlias = tuple[
    str | None,  # run_id
    str | None,  # item_id
    str | None,  # workflow_name
    str | None,  # agent_role
    str | None,  # event_id
    datetime | None,  # ts
    TelemetryClient | None,  # client
]
"""A builder's envelope arguments, in this order (a tuple: the builders run per event)."""


def emit_event(event_type: type[E], payload: Mapping[str, object], envelope: Envelope) -> E:
    """Build, validate and queue one event; the body of every ``emit_*`` builder.

    The hot path of every builder call, measured against pydantic validating the
    finished event alone (``benchmarks/sdk.py``, issue 19): one clock read, one
    contextvar read (``context.resolve``) and one call of the model's compiled
    validator (``model_validate`` adds a Python frame and checks around it).
    """
    run_id, item_id, workflow_name, agent_role, event_id, ts, client = envelope
    target = client or get_client()
    now = target.clock()
    data: dict[str, Any] = {
        # The id is minted from the clock, not from ts: an event about the past (a
        # backfill, late feedback) still lands in a live partition.
        "event_id": event_id or new_ulid(int(now.timestamp() * 1000)),
        "ts": ts or now,
        **context.resolve(run_id, item_id, workflow_name, agent_role),
    }
    # Keyword arguments are flat: a quick look proves them storable far cheaper than
    # the general walk, which still runs for anything out of the ordinary.
    plain = flat_values_are_plain(data.values()) and flat_values_are_plain(payload.values())
    data["payload"] = payload
    try:
        event: E = event_type.__pydantic_validator__.validate_python(
            data, context=_PLAIN if plain else None
        )
    except ValidationError as exc:
        raise InvalidEventError.of(exc) from None
    target.emit(event)
    return event


def emit(event: EventBase, *, client: TelemetryClient | None = None) -> EventBase:
    """Queue an event built by hand (already validated by its model)."""
    (client or get_client()).emit(event)
    return event


def emit_batch(events: list[EventBase], *, client: TelemetryClient | None = None) -> None:
    (client or get_client()).emit_batch(events)


def emit_deferred(
    event_type: type[EventBase],
    payload: PayloadDict,
    *,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
    ts: datetime | None = None,
    client: TelemetryClient | None = None,
    finish: Callable[[], Mapping[str, Any]] | None = None,
    minted_at: datetime | None = None,
    correlation: context.Correlation | None = None,
) -> None:
    """Queue an event that the sender thread validates (:mod:`sdk.telemetry.deferred`).

    For instrumentation on a host's hot path, which must not raise and should not pay
    for validation there: the id, time and correlation are fixed now; an invalid event
    is logged and counted as rejected later instead of raising here. Declare
    ``payload`` as the event's TypedDict from :mod:`sdk.telemetry.payloads`, so that
    mypy finds a misspelled key there is no caller left to tell. ``finish`` computes the
    rest of the payload where the event is built (it must not raise).

    ``minted_at`` and ``correlation`` are for events made later than they happened (the
    LangGraph handler replays its callbacks on the sender thread): the client's clock
    and :func:`~sdk.telemetry.context.current` as they read where it happened.
    """
    target = client or get_client()
    ids = context.resolve(run_id, item_id, workflow_name, agent_role, within=correlation)
    minted = minted_at if minted_at is not None else target.clock()
    target.emit(DeferredEvent(event_type, ids, payload, minted, ts, finish))
