"""Dagster definitions: partitions, retention, aggregates, KB ingestion."""
