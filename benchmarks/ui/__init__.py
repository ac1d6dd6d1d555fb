"""Web UI: one run of 500 steps rendered by the server, next to the JSON read API.

    .venv/bin/python -m benchmarks.ui [--steps 500] [--rounds 6] [--requests 30]
                                      [--no-profile] [--json] [--keep-db]

Target (issue 17): "Pages render a run of 500 steps in <= 300 ms server time".

A fresh database gets, through the real ingest API (``POST /telemetry/events/batch``,
so every event is validated as a producer's would be), one run of ``--steps``
``workflow.step_completed`` events (event_version 2, one or two model calls per model
step, eight nodes, LangGraph fan-out: up to five steps sharing one step number and
overlapping in time, ~3 % errors each followed by a retry, one unpriced model), with a
``run_started``, a ``run_completed``, the item's state changes and five learning events;
and a second, ordinary run of 12 steps. No artifacts are linked (the page then reads
none).

The API is the real one (``wdp api``: one uvicorn worker) with a read key. Measured over
loopback with one keep-alive ``httpx.Client``:

* ``GET /ui/runs/{id}`` for the big run, and as the baseline ``GET /telemetry/runs/{id}``
  for the same run (the same query, answered as JSON instead of HTML);
* ``GET /ui/runs`` and ``GET /ui/usage`` (30 days by model: today live) once seeded;
* ``GET /healthz``, the floor a request costs on this server.

Rounds interleave the endpoints (ABCDE, EDCBA, ...), ``--requests`` calls of one
endpoint per block, after a warm-up. Two figures per request: the client's time to the
last byte, and the server's own time, read from the API's latency histogram
(``wdp_ingest_request_seconds`` on ``GET /metrics``, recorded by ``LatencyMiddleware``
from the ASGI call to its last ``send``): ``/metrics`` is scraped after each request
(untimed), and the growth of the histogram's sum over every path but ``/metrics`` is
that one request's server time (its count must grow by exactly one).

Then, unless ``--no-profile``, one run page is split in this process (SQL, shaping the
rows, waterfall geometry, Jinja rendering; JSON shaping and encoding for the baseline;
what gzip of the page would cost, which the API does not do) and profiled (cProfile), to
say where the time goes. The run is invalid (exit 1) if a page lacks what was seeded: a
bar and a table row per step, every step in the JSON, both runs listed, the usage chart.

Modules: ``seed`` (the runs, through the ingest API), ``measure`` (the API, the
interleaved rounds, the in-process profile) and ``__main__`` (options, the report).
"""
