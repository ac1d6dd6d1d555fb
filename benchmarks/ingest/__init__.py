"""Benchmark of the ingest API against what Postgres itself can do (issue 3).

One run, one machine, one fresh database (made on ``$DATABASE_URL``'s server, or on an
embedded pgserver in a temporary directory, and dropped at the end):

(a) ceiling   COPY into a temp staging table + INSERT … SELECT … ON CONFLICT DO NOTHING
              into telemetry.workflow_events, one psycopg connection;
(b) batch     POST /telemetry/events/batch, 500 events per request, 4 concurrent clients;
(c) single    POST /telemetry/events, 32 concurrent connections (closed loop), then an
              open loop at a fixed offered rate (500 req/s for 5 s) for its p99 latency;
(d) baseline  one INSERT + COMMIT per event, one psycopg connection.

Targets: batch >= 0.5 x ceiling; single >= 2 x baseline; p99 <= 50 ms at 500 req/s.
Every phase uses fresh event ids and its own ``run_id``; the rows are counted after each
phase and the run fails (exit 1) if any event is missing.

The load generator runs on the same machine as the API and Postgres. To keep it from
starving the server it sends pre-serialised bodies over keep-alive connections from one
uvloop thread (so it can never use more than one core) with a minimal HTTP/1.1 client:
httpx.AsyncClient (``--client httpx``) needs 1-3 ms of CPU per request on a 2-core VM
and becomes the bottleneck itself. The CPU used by the client, the API processes,
Postgres and everything else on the machine is printed for every phase.

Run from the repository root:  .venv/bin/python -m benchmarks.ingest [--workers 2] [--json]

Modules: ``events`` (the generated events, a phase's result), ``direct`` (phases a and d,
straight to Postgres), ``clients`` (the load generators), ``api`` (phases b and c), and
``__main__`` (options, targets, the report); the database, the API launcher and the CPU
accounting are :mod:`benchmarks.harness`'s.
"""
