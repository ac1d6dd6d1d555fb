"""Group commit for single-event requests.

One INSERT + COMMIT per request caps throughput at the disk's fsync rate. Requests
instead hand their row to this writer and wait; a few writer tasks each take whatever
has queued up (up to ``max_batch``) and store it in one transaction, then answer every
waiting request with its own outcome. Under load the groups grow by themselves; when
idle a request is written immediately, so no latency is added to wait for company.
Hand-written because no library does request-level group commit for asyncio + psycopg.

One writer by default (``INGEST_GROUP_COMMIT_WRITERS``): a second one halves the groups
(both drain the same queue), and the per-group cost (the statement, the driver, the
commit) is most of a single request's API CPU; measured in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ingest_api.errors import ApiError
from ingest_api.store import EventRow, EventStore, WriteResult

log = logging.getLogger("ingest_api")


class GroupCommitWriter:
    def __init__(self, store: EventStore, *, max_batch: int = 500, writers: int = 1) -> None:
        self._store = store
        self._max_batch = max_batch
        self._writers = writers
        self._queue: asyncio.Queue[tuple[EventRow, asyncio.Future[WriteResult]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_group: Callable[[int], None] = lambda size: None  # metrics hook

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"group-commit-{i}") for i in range(self._writers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            # Whatever a task ended with, the others are awaited and the queue drained.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.cancel()

    async def submit(self, row: EventRow) -> WriteResult:
        """Queue ``row`` for the next group and wait for its outcome (or store error)."""
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((row, future))  # unbounded: never waits, no coroutine
        return await future

    async def _run(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self._max_batch and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                self.on_group(len(group))
                outcomes = await self._store.write_isolating([row for row, _ in group])
                if len(outcomes) != len(group):  # a bug of the store: every waiter hears it
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(group)} rows")
            except asyncio.CancelledError:
                for _, future in group:
                    future.cancel()
                raise
            except Exception as exc:  # every waiter must hear about it, whatever it is
                # ... and the writer lives on: with one writer (the default) its death
                # would leave every later request waiting for ever.
                if not isinstance(exc, ApiError):  # the store's refusals go to the clients
                    log.exception("a group commit failed")
                outcomes = [exc] * len(group)
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
