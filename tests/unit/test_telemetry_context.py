"""Correlation ids: nesting, asyncio tasks, threads."""

from __future__ import annotations

import asyncio
import threading

from sdk.telemetry import capture, correlation, current, restore


def test_blocks_nest_and_inherit_unset_ids() -> None:
    assert current().run_id is None
    with correlation(run_id="r1", workflow_name="wf"):
        with correlation(item_id="i1", run_id="r2"):
            inner = current()
            assert (inner.run_id, inner.item_id, inner.workflow_name) == ("r2", "i1", "wf")
        assert (current().run_id, current().item_id) == ("r1", None)
    assert current().run_id is None


def test_ids_flow_into_asyncio_tasks_and_stay_isolated() -> None:
    async def worker(item: str) -> tuple[str | None, str | None]:
        with correlation(item_id=item):
            await asyncio.sleep(0)
            return current().run_id, current().item_id

    async def main() -> list[tuple[str | None, str | None]]:
        with correlation(run_id="run"):
            return list(await asyncio.gather(worker("a"), worker("b")))

    assert asyncio.run(main()) == [("run", "a"), ("run", "b")]


def test_capture_and_restore_across_threads() -> None:
    seen: list[str | None] = []
    with correlation(run_id="parent"):
        snapshot = capture()

    def thread_body() -> None:
        seen.append(current().run_id)  # threads start without the parent's context
        with restore(snapshot):
            seen.append(current().run_id)
        seen.append(current().run_id)

    thread = threading.Thread(target=thread_body)
    thread.start()
    thread.join()
    assert seen == [None, "parent", None]
