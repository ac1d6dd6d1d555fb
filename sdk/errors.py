"""The base of every exception the SDK raises on purpose.

Callers catch :class:`WdpError` to handle anything wdp refuses or cannot do; each
domain subclasses it (configuration, database, artifacts, telemetry, …) so a
boundary such as the HTTP API can map a domain error to a status in one place.
"""

from __future__ import annotations


class WdpError(Exception):
    """Base class of every error raised deliberately by wdp."""


class ConfigurationError(WdpError):
    """The settings are missing something or contradict each other."""
