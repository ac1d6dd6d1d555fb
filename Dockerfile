# The wdp image for docker-compose.yml: the ingest API, migrations and Dagster services.
# Pinned to an exact Python and Debian release, like every image of docker-compose.yml.
FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/var/lib/wdp/dagster
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY sdk ./sdk
COPY ingest_api ./ingest_api
COPY platform_defs ./platform_defs
COPY migrations ./migrations
COPY alembic.ini workspace.yaml ./
RUN pip install --no-cache-dir -c constraints.txt ".[api,dagster,kb,s3]" \
    && mkdir -p "$DAGSTER_HOME" /var/lib/wdp/dagster-logs
COPY deploy/dagster/dagster.yaml deploy/dagster/workspace.yaml /var/lib/wdp/dagster/
# Dagster writes run state under DAGSTER_HOME and run logs to /var/lib/wdp/dagster-logs
# (compose mounts a shared volume there, which starts with this ownership), wdp its spool
# and files under WDP_DATA_DIR (/var/lib/wdp): all must belong to the services' user.
RUN chown -R nobody:nogroup /var/lib/wdp
USER nobody
EXPOSE 8000 3000 4000
