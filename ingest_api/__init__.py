"""Litestar ingestion API (POST /telemetry/events)."""
