"""Per-number send rate (anti-ban): a burst of a few messages, then one every few seconds.

A rate is written `BURST/INTERVALs` (`5/3s`: five at once, then one every 3 s) or `off`.
Scheduling is GCRA (a token bucket expressed as a "theoretical arrival time"), so each
send gets its expected time when it is accepted and the API can show it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from zapgate.errors import ValidationFailed
from zapgate.i18n import N_

_RATE_RE = re.compile(r"^\s*(\d{1,4})\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    burst: int
    interval: float  # seconds between sends once the burst is used


def parse_rate(value: str) -> Rate | None:
    """`None` means unlimited (`off`)."""
    text = value.strip().lower()
    if text in {"off", "none", "0"}:
        return None
    m = _RATE_RE.fullmatch(text)
    if not m or int(m.group(1)) < 1 or float(m.group(2)) <= 0:
        raise ValidationFailed(
            N_("send rate {rate!r} is not valid"),
            hint=N_("Write BURST/INTERVALs, e.g. 5/3s (five at once, then one every 3 s), or off."),
            rate=value[:40],
        )
    return Rate(burst=int(m.group(1)), interval=float(m.group(2)))


class SendScheduler:
    """Remembers, per session, when the next send may go (in memory: after a restart the
    persisted `scheduled_at` of queued messages still holds)."""

    def __init__(self) -> None:
        self._tat: dict[int, datetime] = {}

    def reserve(self, session_id: int, rate: Rate | None, now: datetime) -> datetime:
        """The time this send may go; books the slot."""
        if rate is None:
            return now
        step = timedelta(seconds=rate.interval)
        tat = max(self._tat.get(session_id, now), now)
        allowed_at = max(now, tat - step * (rate.burst - 1))
        self._tat[session_id] = tat + step
        return allowed_at

    def forget(self, session_id: int) -> None:
        self._tat.pop(session_id, None)
