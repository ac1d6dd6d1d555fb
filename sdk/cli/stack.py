"""``wdp run`` / ``make run``: the whole local stack in one foreground process.

Starts the database (embedded unless ``DATABASE_URL`` is set), applies migrations, then
runs each service as a child process with ``DATABASE_URL`` pointing at that database
so the children share it instead of racing to start their own. Ctrl-C or SIGTERM stops
the children (SIGTERM, then SIGKILL after a grace period) and, if this process
started the embedded Postgres, stops it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from rich.console import Console

from sdk.db import embedded, migrate
from sdk.db.url import redact
from sdk.settings import get_settings

GRACE_SECONDS = 10.0


@dataclass
class Service:
    """A child process of the stack."""

    name: str
    argv: list[str]
    url: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def services() -> list[Service]:
    """The services ``make run`` starts beside the database (API and Dagster come later)."""
    return []


def run_stack(*, console: Console) -> int:
    settings = get_settings()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        console.print(f"\nreceived {signal.Signals(signum).name}, shutting down…")
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    started_embedded = settings.database_url is None
    if started_embedded:
        console.print(f"starting embedded Postgres in {embedded.pgdata_dir(settings.wdp_data_dir)}")
        url = embedded.start(settings.wdp_data_dir)
    else:
        from sdk.db.engine import resolve_database_url

        url = resolve_database_url(settings)
    console.print(f"database: {redact(url)}")
    migrate.upgrade(url)
    console.print(f"migrations at {migrate.current_revision(url)}")

    children = services()
    env = {**os.environ, "DATABASE_URL": url}
    exit_code = 0
    try:
        for svc in children:
            svc.process = subprocess.Popen(svc.argv, env=env)  # noqa: S603
            console.print(f"started {svc.name} (pid {svc.process.pid}) {svc.url or ''}")
        console.print("[green]wdp is running[/green]; press Ctrl-C to stop")
        while not stop.wait(0.5):
            for svc in children:
                assert svc.process is not None
                code = svc.process.poll()
                if code is not None:
                    console.print(f"[red]{svc.name} exited with status {code}[/red]")
                    exit_code = code or 1
                    stop.set()
    finally:
        _terminate(children, console)
        if started_embedded:
            embedded.stop(settings.wdp_data_dir)
            console.print("embedded Postgres stopped")
    return exit_code


def _terminate(children: list[Service], console: Console) -> None:
    running = [s for s in children if s.process is not None and s.process.poll() is None]
    for svc in running:
        assert svc.process is not None
        svc.process.send_signal(signal.SIGTERM)
    for svc in running:
        assert svc.process is not None
        try:
            svc.process.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            console.print(f"{svc.name} did not stop in {GRACE_SECONDS:.0f}s; killing it")
            svc.process.kill()
            svc.process.wait()
        console.print(f"stopped {svc.name}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_stack(console=Console(stderr=True)))
