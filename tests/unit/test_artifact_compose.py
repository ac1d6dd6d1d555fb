"""docker-compose.yml and .env.example, checked without a Docker engine (none on CI)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from sdk.settings import WdpSettings, reset_settings_cache

ROOT = Path(__file__).resolve().parents[2]
MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
POSTGRES_IMAGE = "pgvector/pgvector:0.8.0-pg16"  # Postgres 16 + pgvector, for KB_EMBEDDER=minilm
BIND = "${WDP_BIND_ADDRESS:-127.0.0.1}"
DAGSTER_LOGS = "/var/lib/wdp/dagster-logs"
WDP_SERVICES = ("migrate", "ingest-api", "dagster-code", "dagster-webserver", "dagster-daemon")
# What a wdp container needs to reach this stack's Postgres and MinIO.
STACK_SETTINGS = {
    "DATABASE_URL",
    "ARTIFACT_STORE",
    "S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "ARTIFACT_BUCKET",
}
# ${NAME}, ${NAME:-default}, ${NAME:?message}; $${NAME} is the container's own variable.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}")
SETTINGS = {name.upper(): field for name, field in WdpSettings.model_fields.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def env_example() -> tuple[dict[str, str], set[str]]:
    """(variables set in .env.example, variables listed there only as comments)."""
    values, commented = {}, set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        if match := re.fullmatch(r"([A-Z0-9_]+)=(.*)", line):
            values[match[1]] = match[2]
        elif match := re.fullmatch(r"# ([A-Z0-9_]+)=.*", line):
            commented.add(match[1])
    return values, commented


def interpolate(text: str, env: dict[str, str]) -> str:
    """What docker compose makes of ``text`` with ``env`` as its .env file."""

    def one(match: re.Match[str]) -> str:
        name, kind, arg = match[1], match[2], match[3]
        if env.get(name):
            return env[name]
        assert kind is not None, f"${{{name}}} has no default and .env.example does not set it"
        assert kind == "-", f"${{{name}}} is required ({arg}) but .env.example does not set it"
        return arg

    return INTERPOLATION.sub(one, text).replace("$$", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "use the mapping form of environment:"
    return {k: str(v) for k, v in env.items()}


def test_the_services_exist(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "postgres",
        "minio",
        "minio-init",
        *WDP_SERVICES,
    }


def test_postgres_16_with_pgvector_and_a_health_check(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == POSTGRES_IMAGE
    assert f"{BIND}:5432:5432" in postgres["ports"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert set(environment(postgres)) == {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def test_minio_pinned_on_quay_with_api_console_and_mc_ready(compose: dict[str, Any]) -> None:
    minio = compose["services"]["minio"]
    assert minio["image"] == MINIO_IMAGE
    assert {f"{BIND}:9000:9000", f"{BIND}:9001:9001"} <= {p.split()[0] for p in minio["ports"]}
    assert minio["command"][:2] == ["server", "/data"]
    assert minio["command"][minio["command"].index("--console-address") + 1] == ":9001"
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]


def test_a_one_shot_init_creates_the_bucket_once_minio_is_healthy(compose: dict[str, Any]) -> None:
    init = compose["services"]["minio-init"]
    assert init["image"] == MINIO_IMAGE  # it ships mc
    assert init["depends_on"] == {"minio": {"condition": "service_healthy"}}
    assert init["restart"] == "no"
    script = " ".join(init["command"])
    alias = re.search(r"mc alias set (\S+) http://minio:9000 ", script)
    assert alias is not None
    assert f'mc mb --ignore-existing "{alias[1]}/$${{ARTIFACT_BUCKET}}"' in script
    assert script.index("mc alias set") < script.index("mc mb")
    assert "&&" in script  # no bucket creation after a failed alias
    assert set(environment(init)) >= {"MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "ARTIFACT_BUCKET"}


def test_the_ingest_api_placeholder(compose: dict[str, Any]) -> None:
    api = compose["services"]["ingest-api"]
    assert " ".join(api["command"]) == "wdp api --host 0.0.0.0 --port 8000"
    assert f"{BIND}:8000:8000" in api["ports"]
    assert {"INGEST_API_KEYS", "DATABASE_URL"} <= set(environment(api))
    assert api["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert api["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "/readyz" in " ".join(api["healthcheck"]["test"])


def test_wdp_services_get_every_setting_the_stack_needs(
    compose: dict[str, Any], env_example: tuple[dict[str, str], set[str]]
) -> None:
    values, _ = env_example
    for name in WDP_SERVICES:
        env = environment(compose["services"][name])
        assert env.keys() >= STACK_SETTINGS, name
        unknown = set(env) - set(SETTINGS) - {"DAGSTER_HOME", "WDP_DAGSTER_PG_URL"}
        assert not unknown, f"{name} sets variables wdp does not read: {unknown}"
        resolved = {k: interpolate(v, values) for k, v in env.items()}
        assert resolved["ARTIFACT_STORE"] == "s3"
        db = urlsplit(resolved["DATABASE_URL"])
        assert (db.hostname, db.port, db.path) == ("postgres", 5432, f"/{values['POSTGRES_DB']}")
        assert (db.username, db.password) == (values["POSTGRES_USER"], values["POSTGRES_PASSWORD"])
        assert resolved["S3_ENDPOINT_URL"] == "http://minio:9000"
        assert resolved["AWS_ACCESS_KEY_ID"] == values["MINIO_ROOT_USER"]
        assert resolved["AWS_SECRET_ACCESS_KEY"] == values["MINIO_ROOT_PASSWORD"]


def test_the_resolved_environment_is_valid_wdp_configuration(
    compose: dict[str, Any],
    env_example: tuple[dict[str, str], set[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values, _ = env_example
    env = environment(compose["services"]["ingest-api"])
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, interpolate(value, values))
    reset_settings_cache()
    settings = WdpSettings()
    assert settings.artifact_store == "s3"
    assert settings.artifact_bucket == values["ARTIFACT_BUCKET"]
    assert settings.api_keys == (values["INGEST_API_KEYS"],)


def test_compose_defaults_agree_with_the_settings(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for name, kind, default in INTERPOLATION.findall(text):
        if kind == "-" and name in SETTINGS:
            parsed = WdpSettings.model_validate({name.lower(): default})
            assert getattr(parsed, name.lower()) == SETTINGS[name].default, name


def test_env_example_lists_every_variable_and_sets_what_compose_uses(
    env_example: tuple[dict[str, str], set[str]],
) -> None:
    values, commented = env_example
    listed = set(values) | commented
    missing = set(SETTINGS) - listed
    assert not missing, f".env.example does not list {sorted(missing)}"
    text = (ROOT / "docker-compose.yml").read_text()
    used = {name for name, _, _ in INTERPOLATION.findall(text)}
    assert used <= set(values), f"compose uses unset variables: {sorted(used - set(values))}"
    assert set(values) <= used, f".env.example sets unused variables: {sorted(set(values) - used)}"
    assert listed <= set(SETTINGS) | used, "unknown variables in .env.example"


def test_dagster_runs_as_code_server_webserver_and_daemon(compose: dict[str, Any]) -> None:
    services = compose["services"]
    code = services["dagster-code"]
    assert code["command"][:3] == ["dagster", "api", "grpc"]
    assert "platform_defs.definitions" in code["command"]
    workspace = yaml.safe_load((ROOT / "deploy" / "dagster" / "workspace.yaml").read_text())
    (location,) = workspace["load_from"]
    assert location["grpc_server"]["host"] == "dagster-code"
    assert str(location["grpc_server"]["port"]) == code["command"][-1]
    web = services["dagster-webserver"]
    assert web["command"][0] == "dagster-webserver"
    assert "127.0.0.1:3000:3000" in web["ports"]  # the UI has no login: loopback only
    assert "/server_info" in " ".join(web["healthcheck"]["test"])
    assert services["dagster-daemon"]["command"][:2] == ["dagster-daemon", "run"]
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon"):
        env = environment(services[name])
        assert env["DAGSTER_HOME"] == "/var/lib/wdp/dagster"
        assert "/dagster" in env["WDP_DAGSTER_PG_URL"]
    instance = yaml.safe_load((ROOT / "deploy" / "dagster" / "dagster.yaml").read_text())
    assert instance["storage"]["postgres"]["postgres_url"] == {"env": "WDP_DAGSTER_PG_URL"}
    init = (ROOT / "deploy" / "postgres" / "10-dagster.sql").read_text()
    assert "CREATE DATABASE dagster" in init
    assert "./deploy/postgres:/docker-entrypoint-initdb.d:ro" in services["postgres"]["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "deploy/dagster/dagster.yaml" in dockerfile


def wdp_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: compose["services"][name] for name in WDP_SERVICES}


def test_every_image_is_pinned_to_an_exact_tag(
    compose: dict[str, Any], env_example: tuple[dict[str, str], set[str]]
) -> None:
    values, _ = env_example
    for name, service in compose["services"].items():
        image = service["image"]
        for resolved in {interpolate(image, {}), interpolate(image, values)}:
            repository, _, tag = resolved.rpartition(":")
            assert repository, f"{name}: {resolved} has no tag"
            assert "/" not in tag, f"{name}: {resolved} has no tag"
            assert tag != "latest", f"{name}: {resolved}"
            assert re.search(r"\d", tag), f"{name}: {resolved} is not an exact version"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert interpolate(compose["services"]["migrate"]["image"], {}) == f"wdp:{version}"
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base[1]), base[1]


def test_every_service_running_wdp_builds_the_same_pinned_image(compose: dict[str, Any]) -> None:
    services = wdp_services(compose)
    images = {service["image"] for service in services.values()}
    assert images == {"${WDP_IMAGE:-wdp:0.1.0}"}, images
    for name, service in services.items():
        assert service["build"] == {"context": "."}, name  # never pulled as a missing tag
        assert service["profiles"] == ["app"], name
    others = set(compose["services"]) - set(services)
    assert not any("wdp" in compose["services"][n]["image"] for n in others)


def test_the_dagster_services_have_their_own_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    code = services["dagster-code"]
    port = code["command"][code["command"].index("-p") + 1]
    assert code["healthcheck"]["test"] == ["CMD", "dagster", "api", "grpc-health-check", "-p", port]
    daemon = services["dagster-daemon"]["healthcheck"]
    assert daemon["test"] == ["CMD", "dagster-daemon", "liveness-check"]
    for name in ("dagster-code", "dagster-daemon"):
        check = services[name]["healthcheck"]
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name


def test_services_wait_for_what_they_need_to_be_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    healthy = {"condition": "service_healthy"}
    done = {"condition": "service_completed_successfully"}
    for name in WDP_SERVICES:
        depends = services[name]["depends_on"]
        for dependency, condition in depends.items():
            target = services[dependency]
            if target.get("restart") == "no":  # one-shot jobs: their success
                assert condition == done, (name, dependency)
            else:
                assert "healthcheck" in target, dependency
                assert condition == healthy, (name, dependency)
    for name in ("migrate", "ingest-api", "dagster-code"):
        assert services[name]["depends_on"]["postgres"] == healthy
    for name in ("dagster-webserver", "dagster-daemon"):
        assert services[name]["depends_on"] == {"dagster-code": healthy}


def test_published_ports_listen_on_the_bind_address(
    compose: dict[str, Any], env_example: tuple[dict[str, str], set[str]]
) -> None:
    values, _ = env_example
    assert values["WDP_BIND_ADDRESS"] == "127.0.0.1"
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published += 1
            assert isinstance(port, str), f"{name}: use the HOST:PORT:PORT string form"
            if name == "dagster-webserver":
                assert port == "127.0.0.1:3000:3000"  # no login: loopback only, always
            else:
                assert port.startswith(f"{BIND}:"), f"{name}: {port}"
                assert interpolate(port, {}).startswith("127.0.0.1:")
    assert published == 5
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    assert "WDP_BIND_ADDRESS" in deployment


def test_run_logs_are_on_a_volume_shared_by_code_server_daemon_and_webserver(
    compose: dict[str, Any],
) -> None:
    instance = yaml.safe_load((ROOT / "deploy" / "dagster" / "dagster.yaml").read_text())
    logs = instance["compute_logs"]
    assert logs["class"] == "LocalComputeLogManager"
    assert logs["config"]["base_dir"] == DAGSTER_LOGS
    assert "run_launcher" not in instance  # DefaultRunLauncher: runs in the code server
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon"):
        assert f"dagster-logs:{DAGSTER_LOGS}" in compose["services"][name]["volumes"], name
    assert "dagster-logs" in compose["volumes"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert DAGSTER_LOGS in dockerfile  # made, and owned by the services' user, in the image
    assert dockerfile.index(DAGSTER_LOGS) < dockerfile.index("chown -R nobody:nogroup /var/lib/wdp")
