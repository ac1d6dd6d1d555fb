"""Run the real ``wdp`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_wdp(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``wdp ARGS`` from the repository root with ``env``; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "sdk.cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class TerminalRun:
    returncode: int
    terminal: bytes  # what the pseudo-terminal received (stdout and/or stderr)
    stdout: bytes  # stdout when it was not the terminal
    stderr: bytes  # stderr when it was not the terminal


def run_wdp_on_terminal(
    env: dict[str, str],
    *args: str,
    stdout_tty: bool = True,
    stderr_tty: bool = True,
    timeout: float = 120,
) -> TerminalRun:
    """``wdp ARGS`` with stdout and/or stderr on a pseudo-terminal, as in a shell.

    The streams that are not the terminal go to files (not pipes: nothing has to read
    them while the command runs, so a large download cannot block it).
    """
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sdk.cli.main", *args],
            env={"COLUMNS": "120", **env},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=slave if stdout_tty else out,
            stderr=slave if stderr_tty else err,
        )
        os.close(slave)
        received = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.1)
                if ready:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: every writer closed the terminal
                        break
                    if not chunk:
                        break
                    received += chunk
                elif proc.poll() is not None:
                    break
            proc.wait(max(deadline - time.monotonic(), 0.1))
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return TerminalRun(proc.returncode, bytes(received), out.read(), err.read())
