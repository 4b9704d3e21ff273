from __future__ import annotations

import pytest

from zapgate.config import Settings, Topology, detect_production, is_placeholder, load_settings
from zapgate.errors import ConfigError

STRONG = "Zq8-vN2kLp0wYt5rB7xHc3Ms9dGf1Ej4"


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


@pytest.mark.parametrize(
    "value",
    [
        "aaaaaaaaaaaaaaaa",  # issue 8: accepted in production before
        "abababababababababababab",
        "1234567812345678",
        "s3cr3t-" + "x" * 30,
    ],
)
def test_low_entropy_secrets_are_refused(value: str) -> None:
    assert is_placeholder(value)


def test_generated_secrets_are_accepted() -> None:
    import secrets

    for _ in range(50):
        assert not is_placeholder(secrets.token_urlsafe(32))
        assert not is_placeholder(secrets.token_hex(16))


def test_low_entropy_secret_key_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_ENV", "production")
    monkeypatch.setenv("ZAPGATE_SECRET_KEY", "a" * 16)
    with pytest.raises(ConfigError, match="not random enough"):
        Settings().validate_for_start(Topology.EMBEDDED)


@pytest.mark.parametrize("value", ["PER-USER", " Shared ", "Embedded"])
def test_topology_case_does_not_matter(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ZAPGATE_TOPOLOGY", value)
    assert Settings().topology is Topology(value.strip().lower())


@pytest.mark.parametrize(
    ("var", "value", "named"),
    [
        ("ZAPGATE_MAX_BODY_BYTES", "abc", "ZAPGATE_MAX_BODY_BYTES"),
        ("ZAPGATE_QUEUE_DEADLINE", "-5", "ZAPGATE_QUEUE_DEADLINE"),
        ("ZAPGATE_TOPOLOGY", "sideways", "ZAPGATE_TOPOLOGY"),
        ("ZAPGATE_BASE_PORT", "99999999999999999999999", "ZAPGATE_BASE_PORT"),
    ],
)
def test_bad_values_are_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, named: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert named in info.value.error
    assert info.value.hint


def test_a_bad_secret_value_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_DATABASE_URL", "x")  # fine as a string: nothing to report
    monkeypatch.setenv("ZAPGATE_PORT", "not-a-port")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "not-a-port" in info.value.error


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({"ZAPGATE_ENGINE": "sim"}, True),
        ({"ZAPGATE_ENGINE": "whatsmeow"}, False),
        ({"ZAPGATE_ENGINE": "whatsmeow", "ZAPGATE_SIM_API": "true"}, True),
        ({"ZAPGATE_ENGINE": "sim", "ZAPGATE_SIM_API": "false"}, False),
        ({"ZAPGATE_ENGINE": "sim", "ZAPGATE_ENV": "production"}, False),
        ({"ZAPGATE_SIM_API": "true", "ZAPGATE_ENV": "production"}, False),
    ],
)
def test_sim_api_only_with_the_sim_engine_or_the_switch_and_never_in_production(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    # Issue 8 item 2.
    for name in ("ZAPGATE_ENGINE", "ZAPGATE_SIM_API", "ZAPGATE_ENV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().sim_api_enabled is enabled


def test_sim_api_switch_in_production_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_ENV", "production")
    monkeypatch.setenv("ZAPGATE_SIM_API", "true")
    monkeypatch.setenv("ZAPGATE_SECRET_KEY", STRONG)
    with pytest.raises(ConfigError, match="ZAPGATE_SIM_API=true in production"):
        Settings().validate_for_start(Topology.EMBEDDED)
    monkeypatch.delenv("ZAPGATE_SIM_API")
    Settings().validate_for_start(Topology.EMBEDDED)
