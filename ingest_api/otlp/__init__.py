"""OTLP/HTTP trace ingestion: ``POST /v1/traces`` turns GenAI spans into workflow events.

:mod:`.decode` reads the body (protobuf or JSON, gzip) with the official
``opentelemetry-proto`` classes; :mod:`.spans` flattens spans and their attributes;
:mod:`.mapping` turns the spans of one export into events; :mod:`.route` is the
endpoint. The mapping is documented in ``docs/otlp.md``.
"""
