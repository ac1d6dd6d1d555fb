"""Advisory-lock keys shared by the assets that must not interleave."""

from __future__ import annotations

# Retention holds it exclusively (session level) while it checks aggregates and drops
# months; aggregation holds it shared for its transaction. So a day is never aggregated
# from a month that is half detached, and a month is never dropped between the check of
# its aggregates and the drop.
RETENTION_LOCK_KEY = 0x77647002
