"""One Settings object (prefix ZAPGATE_), production detection and start-up validation."""

from __future__ import annotations

import math
import os
from collections import Counter
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zapgate.errors import ConfigError, GatewayError
from zapgate.i18n import N_

_TRUTHY = {"1", "true", "yes", "on", "y", "t"}
_PLACEHOLDERS = {
    "",
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "password",
    "xxx",
    "todo",
    "dev",
    "development",
    "test",
    "placeholder",
    "your-secret-key",
    "your_secret_key",
}
MIN_SECRET_LENGTH = 16
# A secret must also look random: enough different characters, and enough bits by the
# Shannon estimate of its own characters ("aaaaaaaaaaaaaaaa" has 0, a 16-character random
# hex string about 50, `secrets.token_urlsafe(32)` about 200).
MIN_SECRET_DISTINCT = 10
MIN_SECRET_BITS = 48.0


class Topology(StrEnum):
    EMBEDDED = "embedded"
    SHARED = "shared"
    PER_USER = "per-user"


def detect_production(environ: dict[str, str] | None = None) -> bool:
    """Production is ZAPGATE_ENV=production, IS_PRODUCTION truthy, or
    RAILWAY_ENVIRONMENT=production (the seed incident ran on Railway)."""
    env = os.environ if environ is None else environ
    return (
        env.get("ZAPGATE_ENV", "").strip().lower() == "production"
        or env.get("IS_PRODUCTION", "").strip().lower() in _TRUTHY
        or env.get("RAILWAY_ENVIRONMENT", "").strip().lower() == "production"
    )


def entropy_bits(value: str) -> float:
    """The Shannon estimate of a string's randomness, from its own character counts."""
    if not value:
        return 0.0
    n = len(value)
    per_char = -sum(c / n * math.log2(c / n) for c in Counter(value).values())
    return per_char * n


def is_placeholder(secret: str | None) -> bool:
    """Missing, a known placeholder, too short, or too regular to be a random secret."""
    if secret is None:
        return True
    value = secret.strip()
    return (
        value.lower() in _PLACEHOLDERS
        or len(value) < MIN_SECRET_LENGTH
        or len(set(value)) < MIN_SECRET_DISTINCT
        or entropy_bits(value) < MIN_SECRET_BITS
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZAPGATE_", extra="ignore")

    env: str = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    topology: Topology | None = None
    worker_url: str = "http://127.0.0.1:5001"
    worker_host: str = "127.0.0.1"
    base_port: int = Field(default=5001, ge=1, le=65535)
    worker_id: str | None = None
    worker_token: str | None = None
    secret_key: str | None = None
    engine: str = "whatsmeow"
    simnet_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    lang: str = "en"
    # Dashboard (issue 4): open sign-up, the Secure cookie flag (None: on in production)
    # and the time zone dates are shown in.
    # Reverse proxies whose X-Forwarded-For / -Proto are believed (comma-separated IPs or
    # CIDRs, e.g. "127.0.0.1,10.0.0.0/8"); empty: none, the peer address is the client.
    trusted_proxies: str = ""
    signup_enabled: bool = True
    cookie_secure: bool | None = None
    timezone: str = "UTC"
    qr_first_ttl: float = Field(default=60.0, gt=0)
    qr_ttl: float = Field(default=20.0, gt=0)
    qr_max_rotations: int = Field(default=5, ge=1)
    health_ttl: float = Field(default=5.0, ge=0)
    worker_timeout: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_text_chars: int = Field(default=65_536, ge=1)
    # Sessions one user may have (issue 8): an admin raises it per user with
    # `zapgate users set-limit EMAIL N`.
    max_sessions_per_user: int = Field(default=10, ge=0)
    # Media (issue 3): WhatsApp's own ceilings are 16 MB for image/audio/video and 100 MB
    # for documents; checked before anything is stored or sent.
    max_media_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_document_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    media_fetch_timeout: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"
    # Events (issue 5): webhooks, outbound queue, anti-ban send rate, retention.
    allow_private_urls: bool = False
    webhook_retry_period: float = Field(default=86_400.0, gt=0)
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_backoff_base: float = Field(default=2.0, gt=0)
    webhook_backoff_cap: float = Field(default=3600.0, gt=0)
    send_rate: str = "5/3s"
    # Country of phone numbers written without '+' (ISO 3166 alpha-2, e.g. BR), for
    # sessions that set none; unset: such numbers are refused as ambiguous.
    default_country: str | None = None
    queue_deadline: float = Field(default=86_400.0, gt=0)
    # Contacts (issue 10): how long a session's answer to "is this number on WhatsApp?"
    # is reused before WhatsApp is asked again (0: always ask).
    contact_check_ttl: float = Field(default=86_400.0, ge=0)
    message_retention_days: float = Field(default=90.0, gt=0)
    poll_interval: float = Field(default=0.5, gt=0)
    sim_api: bool | None = None
    # whatsmeow engine (issue 3): auth-state store (None: SQLite in each session dir, or the
    # registry's database when that is PostgreSQL; "sqlite" forces SQLite; or a postgres://
    # URL), an optional proxy for WhatsApp's websocket, the reconnect backoff (a session
    # retries for ever, at most every `whatsmeow_reconnect_cap` seconds), and how many
    # linked sessions share one host process (issue 14: unlinked ones get their own).
    whatsmeow_store: str | None = None
    whatsmeow_proxy: str | None = None
    whatsmeow_reconnect_base: float = Field(default=1.0, gt=0)
    whatsmeow_reconnect_cap: float = Field(default=60.0, gt=0)
    whatsmeow_sessions_per_host: int = Field(default=25, ge=1, le=1000)
    # Development and tests only: `module:attribute` of another neonize client factory for
    # the host processes (the tests' fake WhatsApp, tests/contract/whatsmeow_fake.py).
    whatsmeow_client_factory: str | None = None
    # `zapgate doctor` checks that WhatsApp's servers can be reached when the engine is
    # whatsmeow: "info" reports without failing, "require" fails, "off" skips the check.
    doctor_whatsapp: str = "info"

    @field_validator("topology", mode="before")
    @classmethod
    def _blank_topology(cls, v: object) -> object:
        # "PER-USER" and " Shared " mean what they say; "" means "not set".
        if isinstance(v, str):
            v = v.strip().lower()
            return v or None
        return v

    @field_validator("default_country", mode="before")
    @classmethod
    def _country(cls, v: object) -> object:
        if isinstance(v, str):
            if not v.strip():
                return None
            code = v.strip().upper()
            if code not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError("not a two-letter ISO 3166 country code such as BR, PT or US")
            return code
        return v

    def media_limit(self, kind: str) -> int:
        """The most bytes a media message of `kind` may carry."""
        return self.max_document_bytes if kind == "document" else self.max_media_bytes

    @property
    def media_body_bytes(self) -> int:
        """The request-body limit of the media routes: the largest media, base64-encoded
        (4/3), plus room for the other fields."""
        largest = max(self.max_media_bytes, self.max_document_bytes)
        return max(self.max_body_bytes, -(-largest * 4 // 3) + 65_536)

    @property
    def is_production(self) -> bool:
        return self.env.strip().lower() == "production" or detect_production()

    @property
    def sim_api_enabled(self) -> bool:
        """The /v1/sim endpoints (and the dashboard's simulated phone): on when the default
        engine is sim, or ZAPGATE_SIM_API=true; never in production."""
        wanted = self.sim_api if self.sim_api is not None else self.engine == "sim"
        return wanted and not self.is_production

    @property
    def effective_topology(self) -> Topology:
        """What `zapgate web` uses when no topology was chosen: shared."""
        return self.topology or Topology.SHARED

    @property
    def doctor_topology(self) -> Topology:
        """What `zapgate doctor` checks when no topology was chosen: shared in production
        (the classic two-service deployment), else embedded (`zapgate serve`)."""
        if self.topology is not None:
            return self.topology
        return Topology.SHARED if self.is_production else Topology.EMBEDDED

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url[len("postgres://") :]
            elif url.startswith("postgresql://"):
                url = "postgresql+asyncpg://" + url[len("postgresql://") :]
            elif url.startswith("sqlite:///") and "+aiosqlite" not in url:
                url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'zapgate.db').resolve()}"

    def validate_for_start(self, topology: Topology) -> None:
        """Refuse to start with a configuration that would fail later. Raises ConfigError
        naming what to set."""
        problems: list[str] = []
        if self.is_production:
            if self.sim_api:
                problems.append(
                    "ZAPGATE_SIM_API=true in production: the simulated network's API lets "
                    "any API key play a phone, so it never runs in production. Remove "
                    "ZAPGATE_SIM_API (or set ZAPGATE_ENV to something other than production "
                    "on a development server)."
                )
            if topology is Topology.PER_USER:
                problems.append(
                    "ZAPGATE_TOPOLOGY=per-user is for development only: it gives user N the "
                    f"port {self.base_port}+N-1, and production runs ONE WhatsApp worker, so "
                    "user 3 would be sent to a port where nothing listens. Use "
                    "ZAPGATE_TOPOLOGY=shared (every session on ZAPGATE_WORKER_URL, kept apart "
                    "by client id and session dir) or embedded."
                )
            if is_placeholder(self.secret_key):
                problems.append(
                    "ZAPGATE_SECRET_KEY is missing, a placeholder or not random enough: set it "
                    f"to a random value of at least {MIN_SECRET_LENGTH} characters "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(32))')."
                )
            if topology is not Topology.EMBEDDED and is_placeholder(self.worker_token):
                problems.append(
                    "ZAPGATE_WORKER_TOKEN is missing, a placeholder or not random enough: set the "
                    f"same random value (at least {MIN_SECRET_LENGTH} characters) on the web "
                    "tier and the worker."
                )
        if topology is Topology.SHARED:
            parts = urlsplit(self.worker_url)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                problems.append(
                    f"ZAPGATE_WORKER_URL={self.worker_url!r} is not an http(s) URL "
                    "(e.g. http://127.0.0.1:5001)."
                )
        try:
            from zapgate.domain.ratelimit import parse_rate

            parse_rate(self.send_rate)
        except GatewayError as err:
            problems.append(f"ZAPGATE_SEND_RATE: {err.error}. {err.hint}")
        if problems:
            raise ConfigError(
                N_("{problems}"),
                hint=N_("See README.md, 'Production variables'."),
                problems=" ".join(problems),
            )


# Fields whose value must never be echoed back in an error message.
_SECRET_FIELDS = {"secret_key", "worker_token", "database_url", "whatsmeow_store", "simnet_url"}


def _describe(exc: ValidationError) -> str:
    """One line per bad variable: its name, what is wrong, and the value (unless secret)."""
    lines = []
    for problem in exc.errors():
        field = str(problem["loc"][0]) if problem["loc"] else "?"
        what = f"ZAPGATE_{field.upper()}: {problem['msg']}"
        if field not in _SECRET_FIELDS and isinstance(problem.get("input"), str | int | float):
            what += f" (got {str(problem['input'])[:60]!r})"
        lines.append(what)
    return "; ".join(lines) + "."


def load_settings(**overrides: Any) -> Settings:
    """The Settings of the environment with command-line overrides (None: not given). A
    bad value is a ConfigError naming the variable, never a traceback."""
    try:
        base = Settings()
    except ValidationError as exc:
        raise ConfigError(
            N_("Bad configuration: {problems}"),
            hint=N_("Fix the variable and start again (README.md, 'Production variables')."),
            problems=_describe(exc),
        ) from None
    update = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=update) if update else base


def url_port(url: str) -> int:
    """The port a worker URL points at, defaulting by scheme."""
    parts = urlsplit(url)
    if parts.port is not None:
        return parts.port
    return 443 if parts.scheme == "https" else 80
