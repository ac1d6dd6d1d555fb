"""``wdp run`` / ``make run``: the whole local stack in one foreground process.

Starts the database (embedded unless ``DATABASE_URL`` is set), applies migrations, then
runs each service as a child process with ``DATABASE_URL`` pointing at that database
so the children share it instead of racing to start their own. Ctrl-C or SIGTERM stops
the children (SIGTERM, then SIGKILL after a grace period) and, if this process
started the embedded Postgres, stops it too.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from sdk.db import embedded, migrate
from sdk.db.engine import resolve_database_url
from sdk.db.url import redact
from sdk.settings import get_settings

GRACE_SECONDS = 10.0


@dataclass
class Service:
    """A child process of the stack."""

    name: str
    argv: list[str]
    url: str | None = None
    health_url: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def wait_healthy(self, stop: threading.Event, timeout: float = 120.0) -> bool:
        """Poll ``health_url`` until it answers 200; False if the process died or time ran out."""
        if self.health_url is None:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stop.is_set():
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return True
            except OSError:
                pass
            stop.wait(0.3)
        return False


API_PORT = 8000
DAGSTER_PORT = 3000
WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"


def services(
    *, host: str = "127.0.0.1", api_port: int = API_PORT, dagster_port: int | None = DAGSTER_PORT
) -> list[Service]:
    """The services ``make run`` starts beside the database (Dagster when installed)."""
    wdp = [sys.executable, "-m", "sdk.cli.main"]
    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    api = f"http://{local}:{api_port}"
    found = [
        Service(
            "ingest API",
            [*wdp, "api", "--host", host, "--port", str(api_port)],
            url=f"{api} (docs at {api}/docs)",
            health_url=f"{api}/healthz",
        ),
    ]
    bin_dir = Path(sys.executable).parent
    if dagster_port is not None and (bin_dir / "dagster-webserver").exists():
        ui = f"http://{local}:{dagster_port}"
        found += [
            Service(
                "Dagster UI",
                [
                    str(bin_dir / "dagster-webserver"),
                    "-w",
                    str(WORKSPACE),
                    "-h",
                    host,
                    "-p",
                    str(dagster_port),
                ],
                url=ui,
                health_url=f"{ui}/server_info",
            ),
            Service(
                "Dagster daemon (schedules, sensors)",
                [str(bin_dir / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
            ),
        ]
    return found


def local_api_key(data_dir: Path) -> str:
    """The ingest API key of the local stack, generated once into ``WDP_DATA_DIR``.

    Only used when INGEST_API_KEYS is unset, so ``make run`` works on a fresh machine
    without running the API unauthenticated. The file is readable by its owner only.
    """
    path = data_dir / "ingest-api-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def run_stack(
    *,
    console: Console,
    host: str = "127.0.0.1",
    api_port: int = API_PORT,
    dagster_port: int | None = DAGSTER_PORT,
) -> int:
    settings = get_settings()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        console.print(f"\nreceived {signal.Signals(signum).name}, shutting down…")
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    data_dir = settings.wdp_data_dir
    # Stop on exit only a server this run started, not one that was already up.
    started_embedded = settings.database_url is None and not embedded.is_running(data_dir)
    children = services(host=host, api_port=api_port, dagster_port=dagster_port)
    exit_code = 0
    try:
        if settings.database_url is None:
            console.print(f"embedded Postgres in {embedded.pgdata_dir(data_dir)}")
        url = resolve_database_url(settings)
        console.print(f"database: {redact(url)}")
        migrate.upgrade(url)
        console.print(f"migrations at {migrate.current_revision(url)}")
        env = {**os.environ, "DATABASE_URL": url}
        if not settings.api_keys and not settings.ingest_auth_disabled:
            env["INGEST_API_KEYS"] = local_api_key(data_dir)
            key_file = data_dir / "ingest-api-key"
            # Shown on an interactive terminal only, never into a captured log.
            shown = (
                f"{env['INGEST_API_KEYS']} (also in {key_file})"
                if console.is_terminal
                else (f"in {key_file}")
            )
            console.print(f"ingest API key (local): {shown}")
        if any(svc.name.startswith("Dagster") for svc in children):
            from sdk.cli import dagster_home

            home, dagster_url = dagster_home.prepare(data_dir, url)
            env |= {"DAGSTER_HOME": str(home), dagster_home.URL_VARIABLE: dagster_url}
            console.print(
                f"Dagster home: {home} (storage: database {dagster_home.DAGSTER_DATABASE!r})"
            )
        for svc in children:
            # Own process group: stopping a service stops what it started too (the
            # webserver's code server, the daemon's run workers).
            svc.process = subprocess.Popen(svc.argv, env=env, start_new_session=True)  # noqa: S603
        for svc in children:
            if not svc.wait_healthy(stop):
                if stop.is_set():
                    return exit_code
                console.print(f"[red]{svc.name} did not come up[/red]; see its output above")
                return 1
            console.print(f"{svc.name} ready" + (f": {svc.url}" if svc.url else ""))
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
        if started_embedded and embedded.stop(data_dir):
            console.print("embedded Postgres stopped")
    return exit_code


def _terminate(children: list[Service], console: Console) -> None:
    running = [s for s in children if s.process is not None and s.process.poll() is None]
    for svc in running:
        assert svc.process is not None
        _signal_group(svc.process, signal.SIGTERM)
    for svc in running:
        assert svc.process is not None
        try:
            svc.process.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            console.print(f"{svc.name} did not stop in {GRACE_SECONDS:.0f}s; killing it")
            _signal_group(svc.process, signal.SIGKILL)
            svc.process.wait()
        console.print(f"stopped {svc.name}")
    for svc in children:  # whatever a service left behind in its group goes too
        if svc.process is not None:
            _signal_group(svc.process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_stack(console=Console(stderr=True)))
