"""Every Postgres advisory-lock key wdp takes, in one place.

Advisory locks share one key space per database: two features that picked the same
number would serialise against each other (or, worse, one would think it holds a lock
the other has). Keeping every key here makes a clash visible in one file; a unit test
(tests/unit/test_single_homes.py) fails if a key is spelled anywhere else. The keys are
``0x7764_70NN``: ``"wdp"`` in ASCII, then a number per lock.
"""

from __future__ import annotations

# Partition maintenance (sdk.db.partitions, transaction level): Dagster's maintenance
# and a migration creating months serialise, so neither trips over a table the other
# has just created.
PARTITION_LOCK_KEY = 0x77647001

# Retention holds it exclusively (session level) while it checks aggregates and drops
# months; aggregation holds it shared for its transaction. So a day is never aggregated
# from a month that is half detached, and no aggregate changes between retention's check
# and its drop. (Late events are kept out by the partition's own lock: see
# platform_defs/assets/retention.py.)
RETENTION_LOCK_KEY = 0x77647002

# Knowledge-base ingestion (sdk.kb.ingest): held by each run, a session lock on a
# connection of its own, so runs never interleave.
KB_LOCK_KEY = 0x77647003

# Aggregating one day (sdk.usage.aggregation, transaction level), in the two-key form
# (this class, the day's number): the hourly refresh of today and an operator's run of
# the same day wait for each other instead of one failing on the other's rows. The
# two-key space does not overlap the one-key space of the locks above.
AGGREGATE_DAY_LOCK_CLASS = 0x77647004

# Writing telemetry.model_prices from a sync or a manual `wdp prices set` (sdk.prices.sync,
# transaction level): a sync compares the data with the stored rows and inserts what
# differs, so two syncs at once would both insert the same new rows; and a seed row is
# added only if no manual row exists, which a `set` running alongside could make false.
PRICES_LOCK_KEY = 0x77647005

ALL_LOCK_KEYS = (
    PARTITION_LOCK_KEY,
    RETENTION_LOCK_KEY,
    KB_LOCK_KEY,
    AGGREGATE_DAY_LOCK_CLASS,
    PRICES_LOCK_KEY,
)
