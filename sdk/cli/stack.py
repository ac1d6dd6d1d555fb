"""``wdp run`` / ``make run``: the whole local stack in one foreground process.

Starts the database (embedded unless ``DATABASE_URL`` is set), applies migrations, then
runs each service as a child process with ``DATABASE_URL`` pointing at that database
so the children share it instead of racing to start their own. Ctrl-C or SIGTERM stops
the children (SIGTERM, then SIGKILL after a grace period) and, if this process
started the embedded Postgres, stops it too.

Everything it prints is a log line in ``WDP_LOG_FORMAT`` (sdk.logs). The services log
JSON to a pipe and :mod:`sdk.cli.relay` re-prints each line in that one format, so the
API's, Dagster's and wdp's own lines look alike. Dagster logs at levels that keep an idle
stack quiet; see :func:`services`.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sdk.cli.launch import signal_group, wait_until_ok
from sdk.cli.relay import start_relay
from sdk.db import embedded, migrate
from sdk.db.engine import resolve_database_url
from sdk.db.url import redact
from sdk.settings import get_settings

GRACE_SECONDS = 10.0
# How long to wait for a stopped service's last output lines (a grandchild may hold its pipe).
RELAY_DRAIN_SECONDS = 2.0
log = logging.getLogger("wdp.run")


@dataclass
class Service:
    """A child process of the stack."""

    name: str
    argv: list[str]
    url: str | None = None
    health_url: str | None = None
    log_name: str = "wdp.service"  # logger of its output lines that name none themselves
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    relays: list[threading.Thread] = field(default_factory=list, repr=False)

    def start(self, env: dict[str, str]) -> None:
        """Start it in its own process group, its output relayed into wdp's log."""
        # Own process group: stopping a service stops what it started too (the
        # webserver's code server, the daemon's run workers).
        self.process = subprocess.Popen(  # noqa: S603
            self.argv,
            env=env,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Unstructured stderr is what a crash looks like (tracebacks, warnings).
        for stream, level in (
            (self.process.stdout, logging.INFO),
            (self.process.stderr, logging.WARNING),
        ):
            thread = start_relay(stream, service=self.log_name, default_level=level)
            if thread is not None:
                self.relays.append(thread)

    def wait_healthy(self, stop: threading.Event, timeout: float = 120.0) -> bool:
        """Poll ``health_url`` until it answers 200; False if the process died or time ran out."""
        if self.health_url is None:
            return True
        return wait_until_ok(
            self.health_url, timeout=timeout, process=self.process, stop=stop, interval=0.3
        )


API_PORT = 8000
DAGSTER_PORT = 3000
WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"


# Dagster's code servers are started by the webserver and the daemon, with no way to pass
# them --log-format; `python -m dagster` reads its options from DAGSTER_CLI_<COMMAND>_*.
DAGSTER_CODE_SERVER_ENV = {
    "DAGSTER_CLI_API_GRPC_LOG_FORMAT": "json",
    "DAGSTER_CLI_CODE_SERVER_START_LOG_FORMAT": "json",
}


def local_host(host: str) -> str:
    """Where a browser on this machine reaches a server listening on ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104


def services(
    *, host: str = "127.0.0.1", api_port: int = API_PORT, dagster_port: int | None = DAGSTER_PORT
) -> list[Service]:
    """The services ``make run`` starts beside the database (Dagster when installed).

    Log levels keep an idle stack quiet. The daemon logs warnings and errors only (its
    sensors would log two INFO lines each per 30 s tick), and its code server errors only:
    the daemon reloads its workspace every 60 s (``RELOAD_WORKSPACE_INTERVAL``), and the
    code server it leaves behind then logs "No heartbeat received in 20 seconds, shutting
    down" as a WARNING, every minute, although nothing is wrong. Failed runs are still
    reported: the ``log_run_failures`` sensor logs them as errors.
    """
    wdp = [sys.executable, "-m", "sdk.cli.main"]
    local = local_host(host)
    api = f"http://{local}:{api_port}"
    found = [
        Service(
            "ingest API",
            [*wdp, "api", "--host", host, "--port", str(api_port)],
            url=f"{api} (docs at {api}/docs; runs in the browser at {api}/ui/runs)",
            health_url=f"{api}/healthz",
            log_name="wdp.api",
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
                    *("-w", str(WORKSPACE), "-h", host, "-p", str(dagster_port)),
                    *("--log-format", "json", "--code-server-log-level", "warning"),
                ],
                url=ui,
                health_url=f"{ui}/server_info",
                log_name="dagster-webserver",
            ),
            Service(
                "Dagster daemon (schedules, sensors)",
                [
                    *(str(bin_dir / "dagster-daemon"), "run", "-w", str(WORKSPACE)),
                    *("--log-format", "json", "--log-level", "warning"),
                    *("--code-server-log-level", "error"),
                ],
                log_name="dagster-daemon",
            ),
        ]
    return found


INGEST_KEY_FILE = "ingest-api-key"
READ_KEY_FILE = "read-api-key"


def local_api_key(data_dir: Path, name: str = INGEST_KEY_FILE) -> str:
    """An API key of the local stack, generated once into ``WDP_DATA_DIR/name``.

    Only used when INGEST_API_KEYS (READ_API_KEYS for the read key) is unset, so
    ``make run`` works on a fresh machine without running the API unauthenticated.
    The ingest key is what the local SDK and ``wdp demo`` send; the read key is a key
    of its own, as in production, for curl or a dashboard reading runs and usage. The
    file is readable by its owner only.
    """
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _announce_key(data_dir: Path, name: str, scope: str) -> str:
    key = local_api_key(data_dir, name)
    # Shown on an interactive terminal only, never into a captured log.
    shown = f"{key} (also in {data_dir / name})" if sys.stderr.isatty() else f"in {data_dir / name}"
    log.info("%s API key (local): %s", scope, shown)
    return key


def run_stack(
    *,
    host: str = "127.0.0.1",
    api_port: int = API_PORT,
    dagster_port: int | None = DAGSTER_PORT,
) -> int:
    settings = get_settings()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
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
            log.info("embedded Postgres in %s", embedded.pgdata_dir(data_dir))
        url = resolve_database_url(settings)
        log.info("database: %s", redact(url))
        migrate.upgrade(url)
        log.info("migrations at %s", migrate.current_revision(url))
        _sync_prices(url)
        # The services log JSON, which the relay parses; PYTHONUNBUFFERED: lines as they happen.
        env = {**os.environ, "DATABASE_URL": url, "WDP_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        if not settings.ingest_auth_disabled:
            if not settings.api_keys:
                env["INGEST_API_KEYS"] = _announce_key(data_dir, INGEST_KEY_FILE, "ingest")
            if not settings.read_keys:
                env["READ_API_KEYS"] = _announce_key(data_dir, READ_KEY_FILE, "read")
        if any(svc.name.startswith("Dagster") for svc in children):
            from sdk.cli import dagster_home

            home, dagster_url = dagster_home.prepare(data_dir, url)
            env |= {"DAGSTER_HOME": str(home), dagster_home.URL_VARIABLE: dagster_url}
            env |= DAGSTER_CODE_SERVER_ENV
            log.info("Dagster home: %s (storage: database %r)", home, dagster_home.DAGSTER_DATABASE)
        for svc in children:
            svc.start(env)
        for svc in children:
            if not svc.wait_healthy(stop):
                if stop.is_set():
                    return exit_code
                log.error("%s did not come up; see its output above", svc.name)
                return 1
            log.info("%s ready%s", svc.name, f": {svc.url}" if svc.url else "")
        log.info(
            "web UI: http://%s:%s/ui/runs (log in with the read API key)",
            local_host(host),
            api_port,
        )
        log.info("wdp is running; press Ctrl-C to stop")
        while not stop.wait(0.5):
            for svc in children:
                assert svc.process is not None
                code = svc.process.poll()
                if code is not None:
                    log.error("%s exited with status %s", svc.name, code)
                    exit_code = code or 1
                    stop.set()
    finally:
        _terminate(children)
        if started_embedded and embedded.stop(data_dir):
            log.info("embedded Postgres stopped")
    return exit_code


def _terminate(children: list[Service]) -> None:
    running = [s for s in children if s.process is not None and s.process.poll() is None]
    for svc in running:
        assert svc.process is not None
        signal_group(svc.process, signal.SIGTERM)
    for svc in running:
        assert svc.process is not None
        try:
            svc.process.wait(GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", svc.name, GRACE_SECONDS)
            signal_group(svc.process, signal.SIGKILL)
            svc.process.wait()
        signal_group(svc.process, signal.SIGKILL)  # what it left behind in its group goes too
        for thread in svc.relays:  # its last lines (the pipe closes with the group)
            thread.join(RELAY_DRAIN_SECONDS)
        log.info("stopped %s", svc.name)
    for svc in children:  # a service that had already exited, and its group
        if svc.process is not None:
            signal_group(svc.process, signal.SIGKILL)
        for thread in svc.relays:
            thread.join(RELAY_DRAIN_SECONDS)


def _sync_prices(url: str) -> None:
    """Fill telemetry.model_prices from the pinned genai-prices data (or from
    ``PRICES_FETCH_URL`` when set, as the asset does: syncing the pinned data here would
    re-insert its older prices over fetched ones at every start) before anything
    aggregates: with an empty table every cost of the first day would read "unknown"
    until the daily ``model_prices`` asset ran. Idempotent (only new or changed rows are
    stored); a failure is logged, never fatal - the asset retries it."""
    from sqlalchemy.exc import SQLAlchemyError

    from sdk.db.engine import create_engine
    from sdk.errors import WdpError
    from sdk.prices.sync import sync_configured

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            report = sync_configured(conn)
        log.info(
            "model prices: %d added, %d changed, %d unchanged",
            report.added,
            report.changed,
            report.unchanged,
        )
    except (WdpError, SQLAlchemyError) as exc:
        log.warning("model prices not synced (the model_prices asset will retry): %s", exc)
    finally:
        engine.dispose()
