"""Workflow telemetry for the orchestrator.

This package must stay light: importing it never pulls in dagster, litestar,
sqlalchemy or boto3 (a unit test checks ``sys.modules``), because the orchestrator
imports it on its hot path.
"""
