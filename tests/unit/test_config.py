from __future__ import annotations

import pytest

from zapgate.config import Settings, Topology, detect_production, is_placeholder
from zapgate.errors import ConfigError

STRONG = "s3cr3t-" + "x" * 30


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "ZAPGATE_ENV",
        "IS_PRODUCTION",
        "RAILWAY_ENVIRONMENT",
        "ZAPGATE_SECRET_KEY",
        "ZAPGATE_WORKER_TOKEN",
        "ZAPGATE_TOPOLOGY",
        "ZAPGATE_WORKER_URL",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"ZAPGATE_ENV": "production"}, True),
        ({"ZAPGATE_ENV": "Production "}, True),
        ({"ZAPGATE_ENV": "staging"}, False),
        ({"IS_PRODUCTION": "true"}, True),
        ({"IS_PRODUCTION": "1"}, True),
        ({"IS_PRODUCTION": "0"}, False),
        ({"IS_PRODUCTION": "false"}, False),
        ({"RAILWAY_ENVIRONMENT": "production"}, True),
        ({"RAILWAY_ENVIRONMENT": "staging"}, False),
    ],
)
def test_production_detection(env: dict[str, str], expected: bool) -> None:
    assert detect_production(env) is expected


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_BASE_PORT", "7001")
    monkeypatch.setenv("ZAPGATE_TOPOLOGY", "per-user")
    monkeypatch.setenv("IS_PRODUCTION", "yes")
    s = Settings()
    assert s.base_port == 7001
    assert s.topology is Topology.PER_USER
    assert s.is_production


@pytest.mark.parametrize("value", [None, "", "changeme", "secret", "short", "  dev  "])
def test_placeholders(value: str | None) -> None:
    assert is_placeholder(value)


def test_a_real_secret_is_not_a_placeholder() -> None:
    assert not is_placeholder(STRONG)


def test_production_requires_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_ENV", "production")
    with pytest.raises(ConfigError) as err:
        Settings().validate_for_start(Topology.SHARED)
    assert "ZAPGATE_SECRET_KEY" in err.value.error
    assert "ZAPGATE_WORKER_TOKEN" in err.value.error


def test_production_refuses_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAILWAY_ENVIRONMENT", "production")
    monkeypatch.setenv("ZAPGATE_SECRET_KEY", "changeme")
    monkeypatch.setenv("ZAPGATE_WORKER_TOKEN", STRONG)
    with pytest.raises(ConfigError) as err:
        Settings().validate_for_start(Topology.SHARED)
    assert "ZAPGATE_SECRET_KEY" in err.value.error
    assert "ZAPGATE_WORKER_TOKEN" not in err.value.error


def test_production_refuses_per_user_with_an_explanation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IS_PRODUCTION", "true")
    monkeypatch.setenv("ZAPGATE_SECRET_KEY", STRONG)
    monkeypatch.setenv("ZAPGATE_WORKER_TOKEN", STRONG)
    with pytest.raises(ConfigError) as err:
        Settings().validate_for_start(Topology.PER_USER)
    assert "per-user" in err.value.error
    assert "ZAPGATE_TOPOLOGY=shared" in err.value.error


def test_production_with_secrets_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IS_PRODUCTION", "true")
    monkeypatch.setenv("ZAPGATE_SECRET_KEY", STRONG)
    monkeypatch.setenv("ZAPGATE_WORKER_TOKEN", STRONG)
    Settings().validate_for_start(Topology.SHARED)
    Settings().validate_for_start(Topology.EMBEDDED)


def test_development_needs_no_secrets() -> None:
    Settings().validate_for_start(Topology.PER_USER)
    Settings().validate_for_start(Topology.EMBEDDED)


def test_bad_worker_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_WORKER_URL", "whatsapp-server-2:5001")
    with pytest.raises(ConfigError, match="ZAPGATE_WORKER_URL"):
        Settings().validate_for_start(Topology.SHARED)


def test_default_topologies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().doctor_topology is Topology.EMBEDDED
    assert Settings().effective_topology is Topology.SHARED
    monkeypatch.setenv("ZAPGATE_ENV", "production")
    assert Settings().doctor_topology is Topology.SHARED


def test_database_urls(tmp_path: object) -> None:
    s = Settings(data_dir="/srv/zg")  # type: ignore[arg-type]
    assert s.resolved_database_url == "sqlite+aiosqlite:////srv/zg/zapgate.db"
    pg = Settings(database_url="postgres://u@h/db")
    assert pg.resolved_database_url == "postgresql+asyncpg://u@h/db"


def test_the_real_engine_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZAPGATE_ENGINE", raising=False)
    assert Settings().engine == "whatsmeow"
    monkeypatch.setenv("ZAPGATE_ENGINE", "sim")
    assert Settings().engine == "sim"
