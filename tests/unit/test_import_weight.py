"""``import sdk.telemetry`` stays light: the orchestrator imports it on its hot path."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("dagster", "litestar", "sqlalchemy", "boto3", "langgraph")


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
