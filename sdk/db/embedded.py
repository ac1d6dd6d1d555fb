"""The embedded Postgres used when ``DATABASE_URL`` is unset.

pgserver ships Postgres 16 (with pgvector) in a wheel, so a newcomer needs no
database install. The server is started detached (it outlives the process that
started it) and is reused by every later process that points at the same data
directory; ``wdp db stop`` or ``make run``'s shutdown stops it. It listens on a
Unix socket only, never on a TCP port.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

from sdk.errors import ConfigurationError, WdpError

log = logging.getLogger(__name__)


class EmbeddedPostgresError(WdpError):
    """The embedded Postgres could not be started or stopped."""


def _pgserver() -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, containers);
            # pgserver then uses /tmp/runtime-$UID, which is what we want anyway.
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigurationError(
            "DATABASE_URL is not set and the embedded Postgres is not installed: "
            "set DATABASE_URL or install the 'embedded' extra (pip install 'wdp[embedded]')"
        ) from exc
    return pgserver


def pgdata_dir(data_dir: Path) -> Path:
    """Where the embedded cluster keeps its files under ``WDP_DATA_DIR``."""
    return (data_dir / "pg").resolve()


def is_running(data_dir: Path) -> bool:
    """Whether an embedded server is up for ``data_dir`` (a stale pid file is not)."""
    pid_file = pgdata_dir(data_dir) / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by the 'pgserver' user
        return True
    return True


def start(data_dir: Path) -> str:
    """Start (or reuse) the embedded server and return its libpq URI.

    When run as root, pgserver runs Postgres as a system user ``pgserver`` (created on
    first use) and makes the directories above the data directory traversable by it.
    """
    pgdata = pgdata_dir(data_dir)
    if any(c.isspace() for c in str(pgdata)):
        # pgserver hands the socket directory to postgres unquoted.
        raise ConfigurationError(
            f"the embedded Postgres cannot use a path containing spaces ({pgdata}); "
            "set WDP_DATA_DIR to a path without spaces, or set DATABASE_URL"
        )
    pgserver = _pgserver()
    _forget_stopped_server(pgserver, data_dir)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    _let_the_server_user_in(pgdata)
    try:
        # cleanup_mode=None: the server stays up after this process exits, so the
        # API, Dagster and the CLI share one server instead of racing to own it.
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except (
        subprocess.CalledProcessError,
        subprocess.TimeoutExpired,
        OSError,
        AssertionError,
    ) as exc:
        raise EmbeddedPostgresError(
            f"could not start the embedded Postgres in {pgdata}: {exc}; "
            f"see {pgdata / 'log'} for the server log"
        ) from exc
    return str(server.get_uri())


def _let_the_server_user_in(pgdata: Path) -> None:
    """As root, make the folders above ``pgdata`` traversable by the 'pgserver' user.

    pgserver does this only when it creates a data directory. Something may make a
    parent private again later (pytest, for one, resets its temporary root to 0700 at
    every session start), and then reusing or stopping the server as 'pgserver' fails
    with "Permission denied". Doing it at every start and stop keeps both working.
    """
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return
    target = pgdata if pgdata.exists() else pgdata.parent
    try:
        from pgserver.utils import ensure_prefix_permissions

        ensure_prefix_permissions(target)
    except (ImportError, OSError):  # pgserver then says what it cannot reach
        return


def _forget_stopped_server(pgserver: Any, data_dir: Path) -> None:
    """Drop pgserver's cached handle for a server that has since been stopped.

    pgserver caches one handle per data directory and would hand it back (with a dead
    socket) to a later start in the same process.
    """
    stale = pgserver.PostgresServer._instances.get(pgdata_dir(data_dir))
    if stale is not None and not is_running(data_dir):
        atexit.unregister(stale._cleanup)
        stale.global_process_id_list.get_and_remove(os.getpid())
        del pgserver.PostgresServer._instances[pgdata_dir(data_dir)]


def stop(data_dir: Path) -> bool:
    """Stop the embedded server if it runs; return whether one was stopped."""
    pgdata = pgdata_dir(data_dir)
    if not is_running(data_dir):
        return False
    commands = _pgserver()._commands
    # pgserver runs the server as a dedicated 'pgserver' user when we are root.
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    _let_the_server_user_in(pgdata)
    try:
        commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError as exc:
        if not (pgdata / "postmaster.pid").exists():
            return False
        raise EmbeddedPostgresError(f"pg_ctl stop failed for {pgdata}: {exc}") from exc
    return True
