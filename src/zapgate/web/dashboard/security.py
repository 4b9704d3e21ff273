"""Dashboard security: the secret key, the signed session cookie, CSRF tokens and the
sign-in rate limit."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from zapgate.config import Settings, is_placeholder

logger = logging.getLogger(__name__)

COOKIE_NAME = "zapgate_session"
COOKIE_MAX_AGE = 30 * 24 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SECRET_FILE = "secret_key"


def resolve_secret_key(settings: Settings, data_dir: Path) -> str:
    """ZAPGATE_SECRET_KEY, or (development only: production refuses to start without
    one) a random key generated once and kept in the data dir, so a restart keeps
    everybody signed in."""
    if not is_placeholder(settings.secret_key):
        assert settings.secret_key is not None
        return settings.secret_key
    path = data_dir / SECRET_FILE
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if len(existing) >= 32:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it between our read and our write: use theirs.
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    logger.warning(
        "ZAPGATE_SECRET_KEY is not set: generated a development key in %s "
        "(set ZAPGATE_SECRET_KEY in production)",
        path,
    )
    return key


@dataclass
class WebSession:
    """What the signed cookie carries: the signed-in user (if any) and the id of their
    server-side dashboard session (checked on every request, revoked by signing out), the
    CSRF token and, for visitors, the language they picked."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    user_id: int | None = None
    sid: str | None = None
    lang: str | None = None
    dirty: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {"c": self.csrf, "u": self.user_id, "s": self.sid, "l": self.lang}

    @classmethod
    def from_payload(cls, data: Any) -> WebSession | None:
        if not isinstance(data, dict):
            return None
        csrf, uid, sid, lang = data.get("c"), data.get("u"), data.get("s"), data.get("l")
        if not isinstance(csrf, str) or len(csrf) < 16:
            return None
        if uid is not None and (not isinstance(uid, int) or isinstance(uid, bool)):
            return None
        if sid is not None and (not isinstance(sid, str) or len(sid) > 64):
            return None
        if lang is not None and not isinstance(lang, str):
            return None
        return cls(csrf=csrf, user_id=uid, sid=sid, lang=lang)

    def sign_in(self, user_id: int, sid: str) -> None:
        # A fresh CSRF token on every sign-in: a token seen before it is useless after.
        self.user_id = user_id
        self.sid = sid
        self.csrf = secrets.token_urlsafe(32)
        self.dirty = True

    def sign_out(self) -> None:
        self.user_id = None
        self.sid = None
        self.csrf = secrets.token_urlsafe(32)
        self.dirty = True

    def check_csrf(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class CookieCodec:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="zapgate.dashboard.session")

    def dumps(self, session: WebSession) -> str:
        return str(self._serializer.dumps(session.to_payload()))

    def loads(self, value: str | None) -> WebSession | None:
        if not value or len(value) > 4096:
            return None
        try:
            data = self._serializer.loads(value, max_age=COOKIE_MAX_AGE)
        except BadSignature:
            return None
        return WebSession.from_payload(data)


class LoginLimiter:
    """Failed sign-ins in a sliding window, in this process: per (client IP, e-mail), so
    one account can't be guessed at, and per client IP across e-mails, so one address
    can't spray passwords over many accounts."""

    def __init__(
        self, max_failures: int = 5, window: float = 300.0, max_ip_failures: int = 20
    ) -> None:
        self.max_failures = max_failures
        self.max_ip_failures = max_ip_failures
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def _wait(self, times: deque[float], limit: int, now: float) -> int:
        if len(times) < limit:
            return 0
        return max(1, int(self.window - (now - times[-limit])) + 1)

    def retry_after(self, ip: str, email: str) -> int:
        """Seconds until another attempt is allowed; 0 when it is allowed now."""
        now = time.monotonic()
        pair = self._recent((ip, email.strip().lower()), now)
        per_ip = self._recent((ip, ""), now)
        return max(
            self._wait(pair, self.max_failures, now),
            self._wait(per_ip, self.max_ip_failures, now),
        )

    def failed(self, ip: str, email: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 10_000:  # bound memory under a spray of e-mails
            for k in list(self._failures)[:1000]:
                self._recent(k, now)
        # The e-mail "" key counts the address's failures across every e-mail.
        for key in ((ip, email.strip().lower()), (ip, "")):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, ip: str, email: str) -> None:
        self._failures.pop((ip, email.strip().lower()), None)
