"""Advisory-lock keys shared by the assets that must not interleave."""

from __future__ import annotations

# Retention holds it exclusively (session level) while it checks aggregates and drops
# months; aggregation holds it shared for its transaction. So a day is never aggregated
# from a month that is half detached, and no aggregate changes between retention's check
# and its drop. (Late events are kept out by the partition's own lock: see
# platform_defs/assets/retention.py.)
RETENTION_LOCK_KEY = 0x77647002
