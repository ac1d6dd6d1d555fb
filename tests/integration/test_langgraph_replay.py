"""The handler records on the graph's thread and replays where its queued work runs.

Real LangGraph graphs and real telemetry clients (queueing, disabled); the clients here
differ from the SDK's only in what they keep of each emit. What is proved: the replay
runs on a sender thread and loses nothing; what it reads of a node's input is what the
input was when the node started; a client that never runs the work cannot make the
records grow without bound; a long backlog wakes the sender; a forked child does not
replay its parent's records.
"""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sdk.langgraph import WdpCallbackHandler, instrument
from sdk.langgraph.handler import MAX_RECORDS, WAKE_AT
from sdk.telemetry.client import TelemetryClient
from sdk.telemetry.deferred import DeferredEvent, DeferredWork
from sdk.telemetry.events import EventBase
from sdk.telemetry.transport import TransportResponse
from sdk.telemetry.values import ulid_datetime
from tests.support.langgraph_graphs import RecordingClient, build_linear, p

WF = "replay-tests"


def handler_of(graph: Any) -> WdpCallbackHandler:
    (handler,) = [h for h in graph.config["callbacks"] if isinstance(h, WdpCallbackHandler)]
    return handler


def _done(state: Any) -> dict[str, Any]:
    return {"status": "done"}


class NeverRuns(TelemetryClient):
    """Keeps events (built) and drops the handler's work unrun, as no sender ever came;
    counts wake-ups."""

    def __init__(self) -> None:
        super().__init__(disabled=True)
        self.events: list[EventBase] = []
        self.work = 0
        self.wakes = 0

    def emit(self, event: EventBase | DeferredEvent | DeferredWork) -> None:
        if isinstance(event, DeferredWork):
            self.work += 1
        elif isinstance(event, DeferredEvent):
            self.events.append(event.build())

    def wake(self) -> None:
        self.wakes += 1


class Accepting:
    """A transport answering every batch as the API does; keeps the event names."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._lock = threading.Lock()

    def send(self, body: bytes, *, timeout: float) -> TransportResponse:
        batch = json.loads(gzip.decompress(body))["events"]
        with self._lock:
            self.received.extend(e["event_name"] for e in batch)
        answer = {"results": [{"status": "created"}] * len(batch)}
        return TransportResponse(status=200, body=json.dumps(answer).encode())

    def close(self) -> None:
        pass


def replays_on(handler: WdpCallbackHandler) -> set[int]:
    """The threads ``handler`` replays on, from now on."""
    threads: set[int] = set()
    replay = handler.replay

    def watched() -> None:
        threads.add(threading.get_ident())
        replay()

    handler.replay = watched  # type: ignore[method-assign]
    return threads


def test_the_replay_runs_on_a_sender_thread_and_every_event_arrives() -> None:
    transport = Accepting()
    client = TelemetryClient(transport=transport, flush_interval_s=3600)
    try:
        graph = instrument(
            build_linear([("a", _done), ("b", _done)]), workflow_name=WF, client=client
        )
        threads = replays_on(handler_of(graph))
        for n in range(20):
            graph.invoke({"item_id": f"S-{n}", "status": "new"})
        assert client.flush(timeout=10)
        assert Counter(transport.received) == {
            "workflow.run_started": 20,
            "workflow.step_completed": 40,
            "workflow.item_state_changed": 20,  # new -> done at a; b leaves it done
            "workflow.run_completed": 20,
        }
        assert threads
        assert threading.get_ident() not in threads
        assert client.stats().rejected == 0
        assert handler_of(graph).live_runs == 0
    finally:
        client.shutdown(timeout=1)


def test_a_replay_longer_than_the_queue_loses_nothing_while_the_api_is_healthy() -> None:
    transport = Accepting()
    # A queue far smaller than one replay's events, and graph threads racing the sender.
    client = TelemetryClient(
        transport=transport, queue_size=50, batch_size=20, flush_interval_s=3600
    )
    try:
        nodes = [(f"n{i}", _done) for i in range(6)]
        graph = instrument(build_linear(nodes), workflow_name=WF, client=client)

        def many(worker: int) -> None:
            for n in range(150):
                graph.invoke({"item_id": f"Q-{worker}-{n}", "status": "new"})

        threads = [threading.Thread(target=many, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert client.flush(timeout=30)
        runs = 6 * 150
        assert Counter(transport.received) == {
            "workflow.run_started": runs,
            "workflow.step_completed": 6 * runs,
            "workflow.item_state_changed": runs,
            "workflow.run_completed": runs,
        }
        stats = client.stats()
        assert (stats.dropped, stats.spooled, stats.rejected) == (0, 0, 0)
    finally:
        client.shutdown(timeout=1)


def test_a_node_changing_its_input_later_does_not_change_what_was_recorded() -> None:
    client = NeverRuns()  # the replay comes after the node has run, as on a sender

    def meddler(state: dict[str, Any]) -> dict[str, Any]:
        state["status"] = "scribbled"  # the input dict, changed in place after start
        state["item_id"] = "OTHER"
        return {"status": "worked"}

    graph = instrument(build_linear([("a", meddler)]), workflow_name=WF, client=client)
    graph.invoke({"item_id": "M-1", "status": "new"})
    assert client.events == []  # nothing replayed yet
    handler_of(graph).replay()
    (change,) = [p(e) for e in client.events if e.event_name == "workflow.item_state_changed"]
    assert (change["from_state"], change["to_state"]) == ("new", "worked")
    (step,) = [e for e in client.events if e.event_name == "workflow.step_completed"]
    assert step.item_id == "M-1"


def test_records_a_client_never_replays_stay_bounded_and_their_events_are_made() -> None:
    client = NeverRuns()
    graph = instrument(build_linear([("a", _done), ("b", _done)]), workflow_name=WF, client=client)
    handler = handler_of(graph)
    runs = MAX_RECORDS // 6 + 200  # six records a run: past the bound
    for n in range(runs):
        graph.invoke({"item_id": f"B-{n}", "status": "new"})
    # Queued, never run; the sender woken past WAKE_AT; at MAX_RECORDS replayed on the
    # spot, which starts over: queued and woken once more for what came after.
    assert (client.work, client.wakes) == (2, 2)
    assert len(handler._records) == runs * 6 - MAX_RECORDS
    whole_runs = MAX_RECORDS // 6  # five events each (new -> done at a only)
    assert len(client.events) == 5 * whole_runs + 1  # and the next run's run_started
    assert handler.live_runs == 0  # replays the rest here
    assert Counter(e.event_name for e in client.events)["workflow.run_completed"] == runs


def test_past_wake_at_unreplayed_records_the_sender_is_woken_once_per_replay() -> None:
    client = NeverRuns()
    graph = instrument(build_linear([("a", _done)]), workflow_name=WF, client=client)
    for n in range(WAKE_AT // 4 + 10):  # four records a run
        graph.invoke({"item_id": f"W-{n}", "status": "new"})
    assert client.wakes == 1
    handler_of(graph).replay()
    for n in range(WAKE_AT // 4 + 10):
        graph.invoke({"item_id": f"X-{n}", "status": "new"})
    assert client.work == 2  # the replay cleared the flag: new records queued new work
    assert client.wakes == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_replay_its_parents_records() -> None:
    client = NeverRuns()
    graph = instrument(build_linear([("a", _done)]), workflow_name=WF, client=client)
    graph.invoke({"item_id": "F-1", "status": "new"})
    handler = handler_of(graph)
    assert len(handler._records) == 4
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it would replay, then leave at once
        try:
            handler.replay()
            os.write(write, f"{len(client.events)} {int(handler._scheduled)}".encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read, 100).decode()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == "0 0"  # nothing replayed there, nothing scheduled
    handler.replay()  # the parent still has them
    assert [e.event_name for e in client.events] == [
        "workflow.run_started",
        "workflow.step_completed",
        "workflow.item_state_changed",
        "workflow.run_completed",
    ]
    assert p(client.events[2])["to_state"] == "done"


def test_disabled_clients_run_the_work_so_nothing_accumulates() -> None:
    client = TelemetryClient(disabled=True)
    graph = instrument(build_linear([("a", _done)]), workflow_name=WF, client=client)
    for n in range(50):
        graph.invoke({"item_id": f"D-{n}", "status": "new"})
    handler = handler_of(graph)
    assert len(handler._records) == 0  # each record replayed as it came
    assert handler.live_runs == 0


def test_a_replay_failing_on_one_record_goes_on_with_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = RecordingClient()
    graph = instrument(build_linear([("a", _done)]), workflow_name=WF, client=client)
    handler = handler_of(graph)
    handler._records.append(("not a record kind",))  # what a bug would leave behind
    handler._records.append((1, None, None))  # CHAIN_END with no moment: raises in replay
    graph.invoke({"item_id": "R-1", "status": "new"})
    assert [e.event_name for e in client.events][-1] == "workflow.run_completed"
    assert "failed replaying on_chain_end" in caplog.text
    assert handler.live_runs == 0


def test_events_keep_the_time_and_correlation_of_the_callback_not_of_the_replay() -> None:
    from sdk.telemetry.context import correlation

    ticks = iter(datetime(2026, 12, 3, 8, 0, tzinfo=UTC) + timedelta(seconds=s) for s in range(99))
    client = NeverRuns()
    client.clock = lambda: next(ticks)
    graph = instrument(build_linear([("a", _done)]), workflow_name=WF, client=client)
    with correlation(agent_role="reviewer"):
        graph.invoke({"item_id": "T-1", "status": "new"})
    time.sleep(0.01)
    handler_of(graph).replay()  # later, outside the correlation, the clock moved on
    started, step, _, done = client.events
    assert started.ts == datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert step.agent_role == "reviewer"
    assert done.agent_role == "reviewer"
    # Each id carries its callback's tick (run start 0 s, node start 1 s, node end 2 s,
    # run end 3 s), not the replay's clock, which would read 4 s and on.
    minted = [ulid_datetime(e.event_id) for e in client.events]
    base = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert minted == [base, base + timedelta(seconds=2), base + timedelta(seconds=2),
                      base + timedelta(seconds=3)]  # fmt: skip
