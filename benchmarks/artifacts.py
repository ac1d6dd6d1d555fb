"""Benchmark the artifact service (issue 5): small writes, large streamed writes, memory.

    .venv/bin/python -m benchmarks.artifacts [--small 2000] [--large-mib 512] [--reps 3]
                                             [--s3-mib 64] [--rss-mib 1024] [--json]

(a) small inline writes: ``write_artifact`` of a ~1 KB text, one thread, writes/s.
(b) large streamed write, file store: ``write_artifact(stream=…)`` of ``--large-mib`` of
    random bytes from a file, next to a baseline in the same run on the same filesystem:
    sha256 of the file, then ``shutil.copyfile`` of it (no fsync; our store fsyncs).
    Interleaved ``--reps`` times, medians compared. Target: >= 0.7 x the baseline.
    Each artifact is read back through ``open_content`` (sha256-verified) and timed.
(c) the same through the s3 store against moto over loopback HTTP (``--s3-mib``; moto is
    a Python server in this process, so the figure is a floor, not MinIO's speed).
(d) peak RSS (``ru_maxrss``) of a fresh process writing ``--rss-mib`` from a stream with
    bounded memory, file store and s3 (moto runs in this process, not the measured one).
    Target: < 150 MB for 1 GiB.
Every large write is checked: stored size and sha256 must match what was sent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# Only what the measured child process needs is imported here: rich, httpx, moto and
# the benchmark harness are imported by the parent's code paths.
from sdk.artifacts import ArtifactService
from sdk.artifacts.stores import BlobStore, FileStore
from sdk.db.engine import create_engine

REPO_ROOT = Path(__file__).resolve().parents[1]

MiB = 1024 * 1024
TARGET_RATIO = 0.7
TARGET_RSS_MB = 150.0


class BenchmarkError(RuntimeError):
    """The run is invalid: content came back different from what was written."""


class PatternStream:
    """``size`` bytes of a repeated random block, produced on demand (no file, no memory)."""

    def __init__(self, size: int, block: bytes) -> None:
        self.remaining = size
        self.block = block
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.remaining if n < 0 else min(n, self.remaining)
        out = (self.block * (n // len(self.block) + 1))[:n]
        self.remaining -= n
        self.hash.update(out)
        return out


def _s3_store(endpoint: str, bucket: str, *, create: bool) -> BlobStore:
    from sdk.artifacts.stores.s3 import S3Store

    store = S3Store(
        bucket=bucket,
        endpoint_url=endpoint,
        access_key_id="bench",
        secret_access_key="bench",  # a throwaway moto server
    )
    if create:
        store.client.create_bucket(Bucket=bucket)
    return store


# --- (a) small inline writes -----------------------------------------------------------


def small_writes(service: ArtifactService, n: int) -> dict[str, float]:
    body = "the agent's note: " + "lorem ipsum dolor sit amet " * 36  # ~1 KB
    for i in range(20):  # warm the pool and the statement cache
        service.write_artifact(type="bench-warmup", content=f"{i} {body}")
    started = time.perf_counter()
    for i in range(n):
        service.write_artifact(type="bench-small", content=f"{i} {body}", owner_run_id="bench")
    elapsed = time.perf_counter() - started
    return {"writes_per_s": n / elapsed, "mean_ms": elapsed / n * 1000, "count": n}


# --- (b)/(c) large streamed writes -----------------------------------------------------


def baseline_copy(src: Path, dst: Path) -> tuple[float, str]:
    """sha256 of ``src`` plus a plain copy to ``dst``: what storing a file minimally costs."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    with src.open("rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    shutil.copyfile(src, dst)
    elapsed = time.perf_counter() - started
    dst.unlink()
    return elapsed, digest.hexdigest()


def streamed_write(service: ArtifactService, src: Path, expected: str) -> tuple[float, float]:
    """Seconds to write ``src`` as an artifact, and to read it back verified."""
    started = time.perf_counter()
    with src.open("rb") as handle:
        result = service.write_artifact(type="bench-large", stream=handle)
    write_s = time.perf_counter() - started
    if result.content_hash != expected or result.size_bytes != src.stat().st_size:
        raise BenchmarkError(f"stored {result.size_bytes} bytes / {result.content_hash}")
    started = time.perf_counter()
    with service.open_content(result.artifact_id) as reader:
        for _chunk in reader:  # VerifiedReader raises at the end on any mismatch
            pass
    read_s = time.perf_counter() - started
    if result.storage_key is not None:
        service.store.delete(result.storage_key)  # keep the disk (or moto's memory) small
    return write_s, read_s


def large_writes(service: ArtifactService, work: Path, mib: int, reps: int) -> dict[str, float]:
    src = work / "large.bin"
    with src.open("wb") as out:
        for _ in range(mib):
            out.write(os.urandom(MiB))
    ours, reads, base = [], [], []
    expected = ""
    for _ in range(reps):  # interleaved, so noise hits both alike
        seconds, expected = baseline_copy(src, work / "copy.bin")
        base.append(seconds)
        write_s, read_s = streamed_write(service, src, expected)
        ours.append(write_s)
        reads.append(read_s)
    src.unlink()
    mb = mib * MiB / 1e6
    return {
        "mib": mib,
        "ours_mb_s": mb / statistics.median(ours),
        "baseline_mb_s": mb / statistics.median(base),
        "read_mb_s": mb / statistics.median(reads),
        "ratio": statistics.median(base) / statistics.median(ours),
    }


# --- (d) peak RSS in a fresh process ---------------------------------------------------


def _vm_hwm_mb() -> float:
    """The kernel's own peak-RSS figure for this process (a cross-check of ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(args: argparse.Namespace) -> int:
    """Runs in the measured subprocess: one streamed write, then print RSS as JSON."""
    import gc

    engine = create_engine(args.db)
    store = (
        FileStore(Path(args.root))
        if args.store == "file"
        else _s3_store(args.endpoint, args.bucket, create=False)
    )
    service = ArtifactService(engine=engine, store=store)
    service.read_artifact  # noqa: B018 - everything imported; measure from here
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    stream = PatternStream(args.rss_mib * MiB, os.urandom(MiB + 7))
    started = time.perf_counter()
    result = service.write_artifact(type="bench-rss", stream=stream)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    if result.content_hash != stream.hash.hexdigest():
        raise BenchmarkError("the 1 GiB write stored a different sha256")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if result.storage_key is not None:
        store.delete(result.storage_key)
    hwm = _vm_hwm_mb()
    print(json.dumps({"before_mb": before, "peak_mb": peak, "vm_hwm_mb": hwm, "seconds": seconds}))
    return 0


def measure_rss(db: str, mib: int, store: str, **where: str) -> dict[str, float]:
    argv = [sys.executable, "-m", "benchmarks.artifacts", "--rss-child", "--db", db]
    argv += ["--rss-mib", str(mib), "--store", store]
    for key, value in where.items():
        argv += [f"--{key}", value]
    # Through a shell that forks: a child spawned straight from this (large) process
    # with vfork inherits our peak RSS into its ru_maxrss at exec.
    command = " ".join(shlex.quote(a) for a in argv) + "; exit $?"
    out = subprocess.run(
        ["/bin/sh", "-c", command], check=True, capture_output=True, text=True, cwd=REPO_ROOT
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2000, help="small inline writes")
    parser.add_argument("--large-mib", type=int, default=512, help="file store large write")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of (b) and (c)")
    parser.add_argument("--s3-mib", type=int, default=64, help="s3 (moto) large write; 0: skip")
    parser.add_argument("--rss-mib", type=int, default=1024, help="streamed write for peak RSS")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--store", default="file", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        return rss_child(args)

    from rich.console import Console

    from benchmarks.harness import fresh_database

    console = Console(width=None if sys.stdout.isatty() else 160)
    results: dict[str, Any] = {
        "machine": (
            f"{os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
        )
    }
    with (
        tempfile.TemporaryDirectory(prefix="wdp-bench-artifacts-", dir=REPO_ROOT / ".wdp")
        if (REPO_ROOT / ".wdp").is_dir()
        else tempfile.TemporaryDirectory(prefix="wdp-bench-artifacts-") as tmp,
        fresh_database(keep=False) as (url, _pid, desc),
    ):
        work = Path(tmp)
        results["database"] = desc
        engine = create_engine(url, pool_size=4)
        file_service = ArtifactService(engine=engine, store=FileStore(work / "store"))
        console.print(f"(a) {args.small} small inline writes…")
        results["small"] = small_writes(file_service, args.small)
        console.print(f"(b) {args.large_mib} MiB streamed to the file store, x{args.reps}…")
        results["file"] = large_writes(file_service, work, args.large_mib, args.reps)

        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request

        from sdk.cli.launch import free_port

        port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        endpoint = f"http://127.0.0.1:{port}"
        try:
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            s3_service = ArtifactService(
                engine=engine, store=_s3_store(endpoint, bucket, create=True)
            )
            if args.s3_mib:
                console.print(f"(c) {args.s3_mib} MiB streamed to s3 (moto), x{args.reps}…")
                results["s3"] = large_writes(s3_service, work, args.s3_mib, args.reps)
            console.print(f"(d) peak RSS of a {args.rss_mib} MiB streamed write, file store…")
            results["rss_file"] = measure_rss(
                url, args.rss_mib, "file", root=str(work / "rss-store")
            )
            console.print(f"(d) peak RSS of a {args.rss_mib} MiB streamed write, s3 (moto)…")
            results["rss_s3"] = measure_rss(
                url, args.rss_mib, "s3", endpoint=endpoint, bucket=bucket
            )
        finally:
            moto.stop()
        engine.dispose()

    report(results, console)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def report(results: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    table = Table(title="artifact service")
    for column in ("measure", "wdp", "baseline", "ratio", "target", "verdict"):
        table.add_column(column)
    small = results["small"]
    table.add_row(
        "(a) small inline writes",
        f"{small['writes_per_s']:,.0f} writes/s ({small['mean_ms']:.2f} ms each)",
        "",
        "",
        "",
        "",
    )
    for key, label in (("file", "(b) file store"), ("s3", "(c) s3 via moto")):
        if key not in results:
            continue
        r = results[key]
        table.add_row(
            f"{label}, {r['mib']} MiB write",
            f"{r['ours_mb_s']:,.0f} MB/s",
            f"{r['baseline_mb_s']:,.0f} MB/s (sha256 + copy)",
            f"{r['ratio']:.2f}x",
            f">= {TARGET_RATIO}x",
            verdict(r["ratio"] >= TARGET_RATIO) if key == "file" else "(moto-bound)",
        )
        table.add_row(f"{label}, verified read", f"{r['read_mb_s']:,.0f} MB/s", "", "", "", "")
    for key, label in (("rss_file", "(d) peak RSS, file"), ("rss_s3", "(d) peak RSS, s3")):
        r = results[key]
        table.add_row(
            label,
            f"{r['peak_mb']:.0f} MB ({r['seconds']:.1f} s)",
            f"{r['before_mb']:.0f} MB before the write",
            "",
            f"< {TARGET_RSS_MB:.0f} MB",
            verdict(r["peak_mb"] < TARGET_RSS_MB),
        )
    console.print(table)
    console.print(results["machine"])
    console.print(results["database"])


if __name__ == "__main__":
    sys.exit(main())
