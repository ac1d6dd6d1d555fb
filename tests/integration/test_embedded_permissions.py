"""The embedded Postgres survives a parent folder made private again after its start.

pytest resets its temporary root (``/tmp/pytest-of-<user>``) to 0700 at every session
start, so a server started earlier, as the 'pgserver' user when we are root, could no
longer be reused or stopped: "pg_ctl: could not access directory …: Permission denied".
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from sdk.db import embedded


@pytest.mark.skipif(os.geteuid() != 0, reason="pgserver switches users only as root")
def test_reuse_and_stop_after_a_parent_was_made_private(tmp_path: Path) -> None:
    private = tmp_path / "private"
    data_dir = private / "wdp"
    url = embedded.start(data_dir)
    try:
        private.chmod(0o700)
        assert embedded.start(data_dir) == url  # reused, not refused
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        private.chmod(0o700)
    finally:
        stopped = embedded.stop(data_dir)
    assert stopped
    assert not embedded.is_running(data_dir)
