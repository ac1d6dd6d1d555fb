# The wdp image for docker-compose.yml: the ingest API, migrations and Dagster services.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/var/lib/wdp/dagster
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY sdk ./sdk
COPY ingest_api ./ingest_api
COPY platform_defs ./platform_defs
COPY migrations ./migrations
COPY alembic.ini workspace.yaml ./
RUN pip install --no-cache-dir -c constraints.txt ".[api,dagster,kb,s3]" \
    && mkdir -p "$DAGSTER_HOME"
COPY deploy/dagster/dagster.yaml deploy/dagster/workspace.yaml /var/lib/wdp/dagster/
# Dagster writes compute logs and run state under DAGSTER_HOME, wdp its spool and files
# under WDP_DATA_DIR (/var/lib/wdp): both must belong to the user the services run as.
RUN chown -R nobody:nogroup /var/lib/wdp
USER nobody
EXPOSE 8000 3000 4000
