"""A short-lived cache of worker reachability, so a request never pays for a health check
it does not need and a dead worker fails fast instead of hanging every request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Entry:
    ok: bool
    checked_at: float
    detail: str


class HealthCache:
    """Remembers, per worker URL, whether the last contact worked.

    Every real call to a worker reports its outcome (`mark`); while the remembered answer
    is younger than `ttl` seconds (`fresh`), a worker known to be down fails at once.
    Changes are logged once, so the log tells the story ("worker ... is reachable")
    without a line per request.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def mark(self, url: str, ok: bool, detail: str = "") -> None:
        old = self._entries.get(url)
        self._entries[url] = _Entry(ok=ok, checked_at=self._clock(), detail=detail)
        if old is None or old.ok != ok:
            if ok:
                logger.info("worker %s is reachable", url)
            else:
                logger.warning("worker %s is NOT reachable: %s", url, detail or "no answer")

    def fresh(self, url: str) -> bool | None:
        """The remembered answer if younger than ttl, else None."""
        entry = self._entries.get(url)
        if entry is None or self._clock() - entry.checked_at > self.ttl:
            return None
        return entry.ok

    def detail(self, url: str) -> str:
        entry = self._entries.get(url)
        return entry.detail if entry else ""
