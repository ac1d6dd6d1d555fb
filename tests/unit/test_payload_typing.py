"""mypy, not the sender thread, catches a misspelled payload key.

Instrumentation's payloads are validated only on the sender thread, where an invalid
one is logged and counted as rejected: a typo in the handler would lose every such
event in production. The handler builds them as the TypedDicts of
:mod:`sdk.telemetry.payloads`, so these tests run mypy (in-process, with the project's
configuration and cache) on code with a misspelled key and expect it to refuse it.
mypy is imported inside the tests only: it is never a runtime dependency.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPLAY = ROOT / "sdk" / "langgraph" / "replay.py"
CALLS = ROOT / "sdk" / "langgraph" / "calls.py"

SNIPPET = """\
from sdk.telemetry.payloads import StepCompletedPayloadDict

payload: StepCompletedPayloadDict = {{
    "node": "plan",
    "step": 1,
    "status": "ok",
    "duration_ms": 1.5,
    "{key}": 120,
}}
"""


def run_mypy(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    from mypy import api  # a test-time tool only

    monkeypatch.setenv("MYPYPATH", str(ROOT))  # this checkout's sdk, not an installed one
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            str(path),
        ]
    )
    return status, stdout + stderr


def test_a_misspelled_key_in_a_payload_typed_dict_fails_mypy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = tmp_path / "wrong_key.py"
    wrong.write_text(SNIPPET.format(key="tokens_inn"))
    status, output = run_mypy(wrong, monkeypatch)
    print(output)  # for the record: pytest -s shows what mypy said
    assert status == 1
    assert re.search(
        r'wrong_key\.py:3: error: Extra key "tokens_inn" for TypedDict '
        r'"StepCompletedPayloadDict"\s+\[typeddict-unknown-key\]',
        output,
    ), output


def test_the_correct_spelling_passes_mypy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    right = tmp_path / "right_key.py"
    right.write_text(SNIPPET.format(key="tokens_in"))
    status, output = run_mypy(right, monkeypatch)
    assert (status, output) == (0, ""), output


# Slips in each of the handler's typed payloads, built where its records are replayed
# (sdk/langgraph/replay.py): (its line, the slip, what mypy says).
REPLAY_TYPOS = [
    (
        '"duration_ms": round(node.duration_ms(at.perf), 3),',
        '"duration": round(node.duration_ms(at.perf), 3),',
        'Extra key "duration" for TypedDict "StepCompletedPayloadDict"',
    ),
    (
        '"to_state": state,',
        '"to_sate": state,',
        'Missing key "to_state" for TypedDict "ItemStateChangedPayloadDict"',
    ),
    (
        '"steps": run.steps,',
        '"steps": str(run.steps),',
        'Incompatible types (expression has type "str", TypedDict item "steps" has type "int")',
    ),
    (
        '{"trigger": "langgraph", "metadata": metadata}',
        '{"triger": "langgraph", "metadata": metadata}',
        'Extra key "triger" for TypedDict "RunStartedPayloadDict"',
    ),
]


# ... and in a step's usage and model calls (sdk/langgraph/calls.py; StepUsage is spread
# into the step's payload, which mypy checks item by item).
CALLS_TYPOS = [
    (
        '"tokens_in": tokens_in,',
        '"tokens_inn": tokens_in,',
        'Extra key "tokens_inn" for TypedDict "StepUsage"',
    ),
    (
        '"tokens_reasoning": usage.reasoning,',
        '"tokens_reasonin": usage.reasoning,',
        'Extra key "tokens_reasonin" for TypedDict "ModelCallDict"',
    ),
    (
        '"usage_reported": usage.known,',
        '"usage_reported": int(usage.known),',
        'Incompatible types (expression has type "int", TypedDict item "usage_reported" '
        'has type "bool")',
    ),
]


@pytest.mark.parametrize(
    ("module", "typos"), [(REPLAY, REPLAY_TYPOS), (CALLS, CALLS_TYPOS)], ids=["replay", "calls"]
)
def test_typos_in_the_handlers_payloads_fail_mypy(
    module: Path,
    typos: list[tuple[str, str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = module.read_text()
    for line, typo, _ in typos:
        assert source.count(line) == 1, f"{module.name} no longer has {line!r}: update this test"
        source = source.replace(line, typo)
    copy = tmp_path / f"{module.stem}_with_typos.py"  # one mypy run for all: it takes seconds
    copy.write_text(source)
    status, output = run_mypy(copy, monkeypatch)
    print(output)
    assert status == 1
    for _, _, error in typos:
        assert error in output, output
