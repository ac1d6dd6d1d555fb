"""Asset ``kb_ingestion`` and the sensor that runs it when new artifact versions appear.

The asset ingests the artifact versions the artifact service lists as pending
(:mod:`sdk.artifacts.kb_queue`), a transaction per batch (``KB_BATCH_SIZE``): see
:mod:`sdk.kb.ingest`. A failed or killed run leaves every uncommitted batch pending, and
the next run takes it whole. Neither the asset nor the sensor writes SQL on the artifact
tables: the artifact package owns them.
"""

from datetime import UTC, datetime

import dagster as dg

from platform_defs.resources import KnowledgeBaseResource, PostgresResource
from sdk.artifacts.kb_queue import pending_summary
from sdk.kb import BatchReport

GROUP = "knowledge_base"
JOB_NAME = "kb_ingestion_job"


class KbIngestionConfig(dg.Config):
    max_batches: int | None = None
    """Stop after this many batches (unset: until nothing is pending)."""


@dg.asset(
    group_name=GROUP,
    description=(
        "Artifact versions with is_kb_ingested = false become kb.documents and kb.chunks: "
        "text extracted (text, markdown, JSON, HTML, PDF), split into overlapping chunks, "
        "full-text indexed (and embedded when KB_EMBEDDER is set). Each batch of "
        "KB_BATCH_SIZE versions commits documents, chunks and flags together, so a re-run "
        "or a crash never duplicates or half-writes anything. Binary content gets a "
        "document with zero chunks and the reason."
    ),
    kinds={"postgres"},
)
def kb_ingestion(
    context: dg.AssetExecutionContext, config: KbIngestionConfig, kb: KnowledgeBaseResource
) -> dg.MaterializeResult[None]:
    def progress(batch: BatchReport) -> None:
        context.log.info(
            f"batch committed: {batch.versions} versions, {batch.chunks} chunks, "
            f"{batch.skipped} without text {batch.reasons or ''}"
        )

    with kb.knowledge_base() as knowledge_base:
        report = knowledge_base.ingest(max_batches=config.max_batches, on_batch=progress)
        embedder = knowledge_base.embedder
    context.log.info(
        f"ingested {report.versions} versions in {report.batches} batches: "
        f"{report.chunks} chunks, {report.skipped} without text; {report.pending} pending"
    )
    return dg.MaterializeResult(
        metadata={
            "versions": report.versions,
            "chunks": report.chunks,
            "skipped": report.skipped,
            "skipped_reasons": dg.MetadataValue.json(report.reasons),
            "batches": report.batches,
            "pending_after": report.pending,
            "embedder": embedder.name if embedder is not None else "none",
        }
    )


kb_ingestion_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.assets(kb_ingestion),
    description="Ingest pending artifact versions into the knowledge base.",
)

ACTIVE = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.sensor(
    name="kb_ingestion_sensor",
    job=kb_ingestion_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Requests a kb_ingestion run when artifact versions are waiting and none is "
        "running. A failed run is retried when new versions arrive, or after an hour."
    ),
)
def kb_ingestion_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource
) -> dg.SensorResult | dg.SkipReason:
    with postgres.engine() as engine, engine.connect() as conn:
        waiting = pending_summary(conn)
    pending, oldest, newest = waiting.count, waiting.oldest, waiting.newest
    if not pending or oldest is None or newest is None:
        return dg.SkipReason("no artifact versions waiting for the knowledge base")
    active = context.instance.get_runs(
        filters=dg.RunsFilter(job_name=JOB_NAME, statuses=ACTIVE), limit=1
    )
    if active:
        return dg.SkipReason(f"{pending} versions waiting; run {active[0].run_id} is active")
    # The key changes with the newest pending version and every hour: a run that failed
    # on these versions is not retried in a hot loop, but is retried.
    hour = datetime.now(UTC).strftime("%Y%m%dT%H")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"kb-{newest.isoformat()}-{hour}",
                tags={
                    "wdp/pending_versions": str(pending),
                    "wdp/oldest_pending": oldest.isoformat(),  # how far ingestion lags
                },
            )
        ]
    )
