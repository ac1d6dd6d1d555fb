"""What the agents did and what it cost: runs, steps and usage, read back out of Postgres.

``aggregation`` writes the daily aggregates (kept forever); the read side answers the
read API (``ingest_api``), the ``wdp usage`` / ``wdp runs`` commands and the Dagster
asset's metadata with the same SQL. Importing :mod:`sdk.telemetry` never imports this
package: it needs SQLAlchemy.
"""
