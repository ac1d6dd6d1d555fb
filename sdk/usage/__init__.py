"""What agents did and cost: runs, their steps, and usage by day, workflow, node and model.

Reads only: the events come from ``telemetry.workflow_events`` and the daily figures from
``telemetry.daily_event_aggregates``. Every query is sans-IO (``sdk.db.queries``), so the
read API and the CLI answer with the same SQL and refuse the same inputs.
"""
