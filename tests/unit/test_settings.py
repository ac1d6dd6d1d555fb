"""Settings: defaults, environment parsing, and docs that list every variable."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from sdk.settings import WdpSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults_match_the_documented_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in WdpSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = WdpSettings()
    assert settings.database_url is None
    assert settings.wdp_data_dir == Path(".wdp")
    assert settings.event_retention_days == 90
    assert settings.event_partitions_ahead == 3
    assert settings.artifact_inline_max_bytes == 512_000


def test_environment_overrides_and_keeps_the_password_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db:5432/wdp")
    monkeypatch.setenv("EVENT_RETENTION_DAYS", "30")
    settings = WdpSettings()
    assert settings.event_retention_days == 30
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value().endswith("@db:5432/wdp")
    assert "hunter2" not in repr(settings)


def test_a_blank_database_url_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "  ")
    assert WdpSettings().database_url is None


def test_invalid_values_are_rejected_with_the_field_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_PARTITIONS_AHEAD", "0")
    with pytest.raises(ValidationError, match="event_partitions_ahead"):
        WdpSettings()


def test_the_first_aggregate_day_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGGREGATE_START_DATE", raising=False)
    assert WdpSettings().aggregate_start_date == date(2026, 1, 1)
    monkeypatch.setenv("AGGREGATE_START_DATE", "2025-06-01")
    assert WdpSettings().aggregate_start_date == date(2025, 6, 1)
    monkeypatch.setenv("AGGREGATE_START_DATE", "June")
    with pytest.raises(ValidationError, match="aggregate_start_date"):
        WdpSettings()


def test_log_format_is_text_or_json_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WDP_LOG_FORMAT", raising=False)
    assert WdpSettings().wdp_log_format is None
    monkeypatch.setenv("WDP_LOG_FORMAT", " JSON ")
    assert WdpSettings().wdp_log_format == "json"
    monkeypatch.setenv("WDP_LOG_FORMAT", "")
    assert WdpSettings().wdp_log_format is None
    monkeypatch.setenv("WDP_LOG_FORMAT", "yaml")
    with pytest.raises(ValidationError, match="wdp_log_format"):
        WdpSettings()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    declared = {name.upper() for name in WdpSettings.model_fields}
    assert declared - documented == set(), "settings missing from docs/configuration.md"
    assert documented - declared == set(), "docs/configuration.md lists unknown settings"


def test_prices_fetch_url_is_opt_in_and_http_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRICES_FETCH_URL", raising=False)
    assert WdpSettings().prices_fetch_url is None  # default: no network access
    monkeypatch.setenv("PRICES_FETCH_URL", "  ")
    assert WdpSettings().prices_fetch_url is None
    monkeypatch.setenv("PRICES_FETCH_URL", " https://example.org/data.json ")
    assert WdpSettings().prices_fetch_url == "https://example.org/data.json"
    monkeypatch.setenv("PRICES_FETCH_URL", "file:///etc/passwd")
    with pytest.raises(ValidationError, match="prices_fetch_url"):
        WdpSettings()
