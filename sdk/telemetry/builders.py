"""The event builders: one ``emit_*`` per event, plus ``emit``/``emit_batch`` for events
built by hand and ``emit_deferred`` for instrumentation.

Every ``emit_*`` takes keyword arguments only, builds its event (ULID ``event_id`` and
``ts`` from the client's clock, correlation ids from the current
:func:`~sdk.telemetry.context.correlation` unless given), validates it - bad input
raises :class:`~sdk.telemetry.errors.InvalidEventError` (a ``WdpError`` and a
``pydantic.ValidationError``) at the call site - and queues it on the client.

The models in :mod:`sdk.telemetry.events` are the one description of each event: the
builders are generated from them (:mod:`sdk.telemetry.emitters`, by
:mod:`sdk.telemetry.codegen`) around one shared body,
:func:`sdk.telemetry.emitting.emit_event`, and tests/unit/test_event_builders.py fails
when a builder's arguments drift from its model's fields.
"""

from sdk.telemetry.emitters import *  # noqa: F403 - the generated emit_* builders
from sdk.telemetry.emitting import emit as emit
from sdk.telemetry.emitting import emit_batch as emit_batch
from sdk.telemetry.emitting import emit_deferred as emit_deferred
