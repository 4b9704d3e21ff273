"""Session states and the transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class SessionState(StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    SCAN_QR = "SCAN_QR"
    PAIRING = "PAIRING"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    LOGGED_OUT = "LOGGED_OUT"
    FAILED = "FAILED"

    @property
    def is_running(self) -> bool:
        return self in _RUNNING


_RUNNING = frozenset(
    {
        SessionState.STARTING,
        SessionState.SCAN_QR,
        SessionState.PAIRING,
        SessionState.CONNECTED,
        SessionState.DISCONNECTED,
    }
)

S = SessionState
_ALLOWED: dict[SessionState, frozenset[SessionState]] = {
    # A stopped but linked session can be logged out (its credentials are dropped).
    S.STOPPED: frozenset({S.STARTING, S.FAILED, S.LOGGED_OUT}),
    S.STARTING: frozenset(
        {S.SCAN_QR, S.PAIRING, S.CONNECTED, S.DISCONNECTED, S.STOPPED, S.FAILED, S.LOGGED_OUT}
    ),
    S.SCAN_QR: frozenset(
        {S.PAIRING, S.CONNECTED, S.STOPPED, S.FAILED, S.DISCONNECTED, S.LOGGED_OUT}
    ),
    S.PAIRING: frozenset(
        {S.SCAN_QR, S.CONNECTED, S.STOPPED, S.FAILED, S.DISCONNECTED, S.LOGGED_OUT}
    ),
    S.CONNECTED: frozenset({S.DISCONNECTED, S.LOGGED_OUT, S.STOPPED, S.FAILED}),
    S.DISCONNECTED: frozenset(
        {S.STARTING, S.CONNECTED, S.LOGGED_OUT, S.STOPPED, S.FAILED, S.SCAN_QR}
    ),
    S.LOGGED_OUT: frozenset({S.STARTING, S.STOPPED}),
    S.FAILED: frozenset({S.STARTING, S.STOPPED}),
}


def can_transition(old: SessionState, new: SessionState) -> bool:
    """True when `old -> new` is a legal move (staying put is always legal)."""
    return old == new or new in _ALLOWED[old]
