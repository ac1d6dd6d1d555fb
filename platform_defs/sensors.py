"""A run-failure sensor: failures land in the daemon log with what to look at."""

import dagster as dg


@dg.run_failure_sensor(
    name="log_run_failures",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Logs every failed run of this code location with its job, run id and error.",
)
def log_run_failures(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    context.log.error(
        f"RUN FAILED: job={run.job_name} run_id={run.run_id}"
        + (f" partition={partition}" if partition else "")
        + f": {context.failure_event.message}"
    )
