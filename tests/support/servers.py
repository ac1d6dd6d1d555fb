"""Real servers on loopback for integration tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

TEST_API_KEYS = ("test-key-primary", "test-key-secondary")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    api_key: str = TEST_API_KEYS[0]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def run_api(
    database_url: str,
    log_path: Path,
    *,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    startup_timeout: float = 30.0,
    wait_for: str = "/readyz",
    port: int | None = None,
    server: str = "uvicorn",
) -> Iterator[ApiServer]:
    """Run ``wdp api`` as a subprocess on a free port until the block ends.

    Returns once ``wait_for`` answers 200 (readiness by default; pass "/healthz" to
    test a server whose database is not ready).
    """
    port = port or free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INGEST_API_KEYS": ",".join(TEST_API_KEYS),
        **(extra_env or {}),
    }
    argv = [sys.executable, "-m", "sdk.cli.main", "api", "--port", str(port)]
    argv += ["--workers", str(workers), "--server", server]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = ApiServer(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"API exited with {proc.returncode}:\n{server.log()}")
            try:
                if httpx.get(f"{server.base_url}{wait_for}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"API not ready in {startup_timeout}s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
