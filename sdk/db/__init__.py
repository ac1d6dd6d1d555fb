"""Postgres: the schema (one MetaData), connection URLs, engines and the embedded server."""
