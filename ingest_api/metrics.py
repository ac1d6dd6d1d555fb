"""Prometheus metrics of one API process (scraped at GET /metrics)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

KNOWN_PATHS = {"/telemetry/events", "/telemetry/events/batch", "/healthz", "/readyz", "/metrics"}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "wdp_ingest_events_total",
            "Events by outcome (created, duplicate, conflict, invalid).",
            ["outcome"],
            registry=self.registry,
        )
        self.otlp_spans = Counter(
            "wdp_ingest_otlp_spans_total",
            "OTLP spans not stored: skipped (no run, node or model call) or rejected.",
            ["outcome"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "wdp_ingest_rejected_total",
            "Rejected requests or events by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "wdp_ingest_request_seconds",
            "Request latency by path, method and status.",
            ["path", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "wdp_ingest_batch_events",
            "Events per batch request.",
            buckets=(1, 10, 50, 100, 250, 500, 1000),
            registry=self.registry,
        )
        self.group_size = Histogram(
            "wdp_ingest_group_commit_events",
            "Single-event requests written per group-commit transaction.",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
            registry=self.registry,
        )
        self._event_children: dict[str, Any] = {}

    def count_event(self, outcome: str, n: int = 1) -> None:
        """Count ``n`` events of ``outcome``: the per-request hot path, so the labelled
        child is looked up once (prometheus_client's ``labels()`` costs ~2 us a call)."""
        child = self._event_children.get(outcome)
        if child is None:
            child = self._event_children[outcome] = self.events.labels(outcome)
        child.inc(n)


class LatencyMiddleware:
    """ASGI middleware recording request latency; unknown paths share one label."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, str], Any] = {}  # labels() once per triple

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
            key = (path, scope["method"], str(status))
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.metrics.latency.labels(*key)
            child.observe(time.perf_counter() - start)
