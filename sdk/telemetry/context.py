"""Correlation ids that follow the work: contextvars, so they flow into asyncio tasks.

``with correlation(run_id=…, item_id=…):`` sets ids for everything emitted inside;
blocks nest (inner values win, unset ones are inherited). Threads do not inherit
contextvars: ``capture()`` takes a snapshot that ``with restore(snapshot):`` applies in
another thread (or use ``contextvars.copy_context().run``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import TypedDict


@dataclass(frozen=True, slots=True)
class Correlation:
    """The ids stamped on events emitted in a context."""

    run_id: str | None = None
    item_id: str | None = None
    workflow_name: str | None = None
    agent_role: str | None = None


class Ids(TypedDict):
    """The correlation ids as an event's envelope fields (see :func:`resolve`)."""

    run_id: str | None
    item_id: str | None
    workflow_name: str | None
    agent_role: str | None


EMPTY = Correlation()
_current: ContextVar[Correlation] = ContextVar("wdp_correlation", default=EMPTY)


def current() -> Correlation:
    """The correlation in effect here."""
    return _current.get()


def resolve(
    run_id: str | None,
    item_id: str | None,
    workflow_name: str | None,
    agent_role: str | None,
    *,
    within: Correlation | None = None,
) -> Ids:
    """The ids given, else those of the current correlation (or of ``within``, one
    :func:`current` returned where the event happened): what an event carries."""
    ctx = _current.get() if within is None else within
    return {
        "run_id": run_id if run_id is not None else ctx.run_id,
        "item_id": item_id if item_id is not None else ctx.item_id,
        "workflow_name": workflow_name if workflow_name is not None else ctx.workflow_name,
        "agent_role": agent_role if agent_role is not None else ctx.agent_role,
    }


def capture() -> Correlation:
    """A snapshot of the ids here, to carry into another thread and ``restore`` there."""
    return _current.get()


@contextmanager
def restore(snapshot: Correlation) -> Iterator[Correlation]:
    """Make ``snapshot`` (from :func:`capture`) the correlation for the block."""
    token = _current.set(snapshot)
    try:
        yield snapshot
    finally:
        _current.reset(token)


@contextmanager
def correlation(
    *,
    run_id: str | None = None,
    item_id: str | None = None,
    workflow_name: str | None = None,
    agent_role: str | None = None,
) -> Iterator[Correlation]:
    """Set correlation ids for the block; ids left as None are inherited from outside."""
    outer = _current.get()
    changes = {
        name: value
        for name, value in (
            ("run_id", run_id),
            ("item_id", item_id),
            ("workflow_name", workflow_name),
            ("agent_role", agent_role),
        )
        if value is not None
    }
    inner = replace(outer, **changes)
    token = _current.set(inner)
    try:
        yield inner
    finally:
        _current.reset(token)
