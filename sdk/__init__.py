"""wdp SDK: the shared module imported by the orchestrator, the ingest API and Dagster.

Importing ``sdk`` itself is free of side effects and heavy dependencies; each domain
lives in its own subpackage (``sdk.db``, ``sdk.telemetry``, …) and is imported on demand.
"""

__version__ = "0.1.0"
