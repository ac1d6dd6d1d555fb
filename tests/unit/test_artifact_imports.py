"""Import weight: boto3 only for the s3 store, and telemetry never pulls in artifacts."""

from __future__ import annotations

import json
import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    probe = f"{code}; import json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def _roots(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_the_artifact_service_with_the_file_store_does_not_load_boto3(tmp_path: object) -> None:
    loaded = _modules_after(
        "import sdk.artifacts; from sdk.artifacts.stores import FileStore; "
        f"FileStore({str(tmp_path)!r}).put('staging/x', [b'x'])"
    )
    assert not _roots(loaded) & {"boto3", "botocore", "s3transfer"}


def test_building_the_s3_store_loads_boto3() -> None:
    loaded = _modules_after(
        "from sdk.artifacts.stores.s3 import S3Store; import sys; "
        "assert 'boto3' not in sys.modules; S3Store(bucket='artifacts')"
    )
    assert "boto3" in loaded


def test_telemetry_and_the_cli_entry_point_stay_free_of_artifacts() -> None:
    for code in ("import sdk.telemetry", "import sdk.cli.main"):
        loaded = _modules_after(code)
        assert "sdk.artifacts" not in loaded, code
        assert not _roots(loaded) & {"boto3", "botocore"}, code
