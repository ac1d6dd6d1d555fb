"""Start ``wdp api`` as a child process, wait until it answers, stop it cleanly.

The one launcher of the API outside ``wdp run``: tests, benchmarks and examples run a
private API on a free port with ``with run_api(...) as api:``. ``wdp run`` (:mod:`sdk.cli.stack`)
starts its services itself, because it relays their output, but waits for them with the
same :func:`wait_until_ok`.

A start that fails (the process exits, or ``wait_for`` does not answer 200 in time)
raises :class:`ApiStartError` with the end of the server's log in its message, so the
reason is on screen without opening a file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sdk.errors import WdpError

LOG_TAIL_CHARS = 4000
STOP_GRACE_SECONDS = 15.0


class ApiStartError(WdpError):
    """``wdp api`` exited, or did not answer, before it was ready; the message ends with
    the last lines of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Straight to the server: a loopback probe must not go through an HTTP(S)_PROXY.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answers_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers 200 now (any error, or another status, is False)."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until_ok(
    url: str,
    *,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    stop: threading.Event | None = None,
    interval: float = 0.1,
) -> bool:
    """Poll ``url`` until it answers 200: True then; False if ``process`` exited, ``stop``
    was set or ``timeout`` seconds passed first."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            return False
        if answers_ok(url):
            return True
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            return False
        if stop is not None:
            stop.wait(interval)
        else:
            time.sleep(interval)


@dataclass
class ApiServer:
    """A running ``wdp api`` child process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    api_key: str | None = None
    _group_killed: bool = field(default=False, init=False, repr=False)

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header of :attr:`api_key` (empty without a key)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log(self) -> str:
        """Everything the server has written (stdout and stderr) so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of :meth:`log`, from the start of a line."""
        text = self.log()
        if len(text) <= chars:
            return text
        tail = text[-chars:]
        return tail.split("\n", 1)[1] if "\n" in tail else tail

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int:
        """SIGTERM the server, SIGKILL it after ``grace`` seconds, then whatever it left
        in its process group (workers); returns its exit status. Idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                signal_group(self.process, signal.SIGKILL)
                self.process.wait()
        if not self._group_killed:
            # Once only: later the group id may belong to an unrelated process.
            self._group_killed = True
            signal_group(self.process, signal.SIGKILL)
        return self.process.returncode

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal ``process``'s process group (it runs in a session of its own, whose id is
    its pid): the server and whatever it started (workers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def run_api(
    database_url: str | None,
    log_path: Path,
    *,
    api_keys: Sequence[str] = (),
    workers: int = 1,
    server: str = "uvicorn",
    port: int | None = None,
    host: str = "127.0.0.1",
    extra_env: Mapping[str, str] | None = None,
    wait_for: str = "/readyz",
    startup_timeout: float = 30.0,
) -> ApiServer:
    """Start ``wdp api`` (this interpreter's) on ``port`` (a free one by default) and
    return once ``wait_for`` answers 200: readiness by default; "/healthz" for a server
    whose database is not ready. Use it as ``with run_api(...) as api:`` to have it
    stopped when the block ends (or call :meth:`ApiServer.stop`).

    The child gets this process's environment, then ``DATABASE_URL`` (unless None),
    ``INGEST_API_KEYS`` (when ``api_keys`` are given) and ``extra_env`` on top. Its
    output goes to ``log_path``. Raises :class:`ApiStartError`, having stopped it, if
    it exits or does not answer within ``startup_timeout`` seconds.
    """
    port = port or free_port(host)
    env = dict(os.environ)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if api_keys:
        env["INGEST_API_KEYS"] = ",".join(api_keys)
    env |= dict(extra_env or {})
    argv = [sys.executable, "-m", "sdk.cli.main", "api", "--host", host, "--port", str(port)]
    argv += ["--workers", str(workers), "--server", server]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers can be stopped with it, as a group
        )
    api = ApiServer(f"http://{host}:{port}", process, log_path, api_keys[0] if api_keys else None)
    try:
        ready = wait_until_ok(f"{api.base_url}{wait_for}", timeout=startup_timeout, process=process)
    except BaseException:
        api.stop()
        raise
    if not ready:
        code = process.poll()
        api.stop()
        why = (
            f"exited with status {code}"
            if code is not None
            else f"did not answer 200 on {wait_for} within {startup_timeout:g} s"
        )
        raise ApiStartError(
            f"wdp api on port {port} {why}; the end of its log ({log_path}):\n{api.log_tail()}"
        )
    return api
