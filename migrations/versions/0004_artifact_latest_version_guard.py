"""Guard work.artifacts.latest_version: it only moves forward, and only to a version that exists.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

The next version of an artifact is ``latest_version + 1``. Set back by SQL (``UPDATE …
SET latest_version = 1`` on an artifact with 81 versions), every later write of it
failed with a duplicate-key error, forever; set to a version that does not exist, reads
of "the latest version" failed. Versions are already guarded by a trigger (0001); this
guards the pointer to them, in the database, so no client can break it.

The order of the write path decides the shape (sdk/artifacts/commit.py):

* a new version is inserted *before* ``latest_version`` moves to it, under the
  artifact's row lock, so an UPDATE can be checked at once (``BEFORE UPDATE``): never
  backwards, and only to a version row that exists;
* a new artifact's row is inserted *before* its version 1 (the version's foreign key
  needs the artifact), already saying ``latest_version = 1``. That INSERT is checked at
  COMMIT (a constraint trigger, ``DEFERRABLE INITIALLY DEFERRED``), when the version
  rows of the transaction are in: ``latest_version`` must then be the artifact's
  highest version, or 0 when it has none.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GUARD_FN = """
CREATE FUNCTION work.guard_latest_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  current_latest integer;
  highest integer;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.latest_version < OLD.latest_version THEN
      RAISE EXCEPTION 'latest_version of artifact % cannot move back from % to %',
          NEW.artifact_id, OLD.latest_version, NEW.latest_version
        USING ERRCODE = 'restrict_violation',
              HINT = 'version numbers are never reused: the next write takes latest_version + 1';
    END IF;
    IF NEW.latest_version <> OLD.latest_version AND NOT EXISTS (
      SELECT 1 FROM work.artifact_versions v
      WHERE v.artifact_id = NEW.artifact_id AND v.version = NEW.latest_version
    ) THEN
      RAISE EXCEPTION 'latest_version of artifact % cannot be %: there is no such version',
          NEW.artifact_id, NEW.latest_version
        USING ERRCODE = 'restrict_violation',
              HINT = 'insert the version row first, then move latest_version to it';
    END IF;
    RETURN NEW;
  END IF;
  -- INSERT, checked at COMMIT: look at the row as it is now (a later UPDATE was checked
  -- by the branch above; a row deleted in the same transaction needs nothing).
  SELECT a.latest_version INTO current_latest FROM work.artifacts a
  WHERE a.artifact_id = NEW.artifact_id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  SELECT coalesce(max(v.version), 0) INTO highest FROM work.artifact_versions v
  WHERE v.artifact_id = NEW.artifact_id;
  IF current_latest <> highest THEN
    RAISE EXCEPTION 'artifact % was inserted with latest_version %, but its highest version is %',
        NEW.artifact_id, current_latest, highest
      USING ERRCODE = 'restrict_violation',
            HINT = 'a new artifact''s latest_version must name its highest version (0 when it has none) by COMMIT';
  END IF;
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.execute(GUARD_FN)
    op.execute(
        "CREATE TRIGGER artifacts_latest_version_forward "
        "BEFORE UPDATE OF latest_version ON work.artifacts "
        "FOR EACH ROW EXECUTE FUNCTION work.guard_latest_version()"
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER artifacts_latest_version_exists "
        "AFTER INSERT ON work.artifacts DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION work.guard_latest_version()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER artifacts_latest_version_exists ON work.artifacts")
    op.execute("DROP TRIGGER artifacts_latest_version_forward ON work.artifacts")
    op.execute("DROP FUNCTION work.guard_latest_version()")
