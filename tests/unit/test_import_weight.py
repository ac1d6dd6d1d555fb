"""``import sdk.telemetry`` stays light: the orchestrator imports it on its hot path."""

from __future__ import annotations

import json
import subprocess
import sys

# mypy: the payload TypedDicts are checked by it, but it is a test-time tool only.
HEAVY = ("dagster", "litestar", "sqlalchemy", "boto3", "langgraph", "mypy")


def test_sdk_telemetry_imports_no_heavy_dependency() -> None:
    # A fresh interpreter: this test process has imported everything already.
    code = (
        "import json, sys; import sdk.telemetry; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == []
