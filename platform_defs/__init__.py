"""Dagster definitions: partitions, retention, aggregates (``definitions.defs``).

Import :mod:`platform_defs.definitions` for the ``Definitions`` object; this package
itself stays light so importing a submodule does not load every asset.
"""
