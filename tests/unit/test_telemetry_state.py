"""The client lifecycle's state machine: the allowed path, every illegal move, and the
shutdown protocol every mode follows."""

from __future__ import annotations

import itertools
import logging
import threading

import pytest

from sdk.errors import WdpError
from sdk.telemetry.state import ClientState, IllegalTransition, StateMachine

NEW, RUNNING, SHUTTING_DOWN, CLOSED = (
    ClientState.NEW,
    ClientState.RUNNING,
    ClientState.SHUTTING_DOWN,
    ClientState.CLOSED,
)
LEGAL = {(NEW, RUNNING), (NEW, SHUTTING_DOWN), (RUNNING, SHUTTING_DOWN), (SHUTTING_DOWN, CLOSED)}
# How to reach each state by legal moves from NEW.
PATH = {
    NEW: [],
    RUNNING: [RUNNING],
    SHUTTING_DOWN: [SHUTTING_DOWN],
    CLOSED: [SHUTTING_DOWN, CLOSED],
}


def machine_in(state: ClientState) -> StateMachine:
    machine = StateMachine()
    for step in PATH[state]:
        machine.move(step)
    assert machine.current is state
    return machine


def test_the_whole_lifecycle() -> None:
    machine = StateMachine()
    assert machine.current is NEW
    machine.start()
    assert machine.current is RUNNING
    machine.start()  # idempotent
    machine.move(SHUTTING_DOWN)
    machine.start()  # a flush during shutdown may start threads: no move
    assert machine.current is SHUTTING_DOWN
    machine.move(CLOSED)
    machine.start()
    assert machine.current is CLOSED


@pytest.mark.parametrize(
    ("source", "target"),
    [pair for pair in itertools.product(ClientState, repeat=2) if pair not in LEGAL],
    ids=lambda state: state.name,
)
def test_an_illegal_transition_raises_and_changes_nothing(
    source: ClientState, target: ClientState
) -> None:
    machine = machine_in(source)
    with pytest.raises(IllegalTransition, match=f"from {source.value} to {target.value}") as info:
        machine.move(target)
    assert isinstance(info.value, WdpError)
    assert (info.value.current, info.value.target) == (source, target)
    assert machine.current is source
    assert machine.try_move(target) is False
    assert machine.current is source


@pytest.mark.parametrize(("source", "target"), sorted(LEGAL, key=str))
def test_each_legal_transition_is_taken(source: ClientState, target: ClientState) -> None:
    machine = machine_in(source)
    assert machine.try_move(target) is True
    assert machine.current is target


def test_shut_down_flushes_then_closes_once() -> None:
    machine = machine_in(RUNNING)
    calls: list[str] = []

    def flush() -> bool:
        calls.append(f"flush in {machine.current.name}")
        return True

    assert machine.shut_down(flush, lambda: calls.append(f"close in {machine.current.name}"))
    assert calls == ["flush in SHUTTING_DOWN", "close in CLOSED"]
    assert machine.shut_down(flush, lambda: calls.append("again")) is True
    assert len(calls) == 2  # closed already: neither flushed nor closed again


def test_a_failing_flush_is_logged_and_shutdown_still_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    machine = StateMachine()
    closed: list[bool] = []

    def broken() -> bool:
        raise OSError("disk gone")

    with caplog.at_level(logging.ERROR, logger="sdk.telemetry"):
        assert machine.shut_down(broken, lambda: closed.append(True)) is False
    assert closed == [True]
    assert machine.current is CLOSED
    assert "flush during shutdown failed" in caplog.text


def test_a_shutdown_during_another_only_flushes_alongside_it() -> None:
    machine = machine_in(RUNNING)
    inside, release = threading.Event(), threading.Event()
    closes: list[str] = []

    def slow_flush() -> bool:
        inside.set()
        release.wait(10)
        return True

    first = threading.Thread(
        target=machine.shut_down, args=(slow_flush, lambda: closes.append("1"))
    )
    first.start()
    assert inside.wait(10)
    assert machine.current is SHUTTING_DOWN
    second_flushes: list[str] = []

    def quick_flush() -> bool:
        second_flushes.append("2")
        return True

    assert machine.shut_down(quick_flush, lambda: closes.append("2")) is True
    assert second_flushes == ["2"]
    release.set()
    first.join(10)
    assert closes == ["1"]
    assert machine.current is CLOSED
