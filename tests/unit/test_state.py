from __future__ import annotations

from itertools import pairwise

from zapgate.domain.state import SessionState as S
from zapgate.domain.state import can_transition


def test_staying_put_is_allowed() -> None:
    assert all(can_transition(s, s) for s in S)


def test_main_lifecycle() -> None:
    path = [
        S.STOPPED,
        S.STARTING,
        S.SCAN_QR,
        S.CONNECTED,
        S.DISCONNECTED,
        S.CONNECTED,
        S.LOGGED_OUT,
        S.STARTING,
    ]
    assert all(can_transition(a, b) for a, b in pairwise(path))


def test_illegal_moves() -> None:
    assert not can_transition(S.STOPPED, S.CONNECTED)
    assert not can_transition(S.LOGGED_OUT, S.CONNECTED)
    assert not can_transition(S.CONNECTED, S.SCAN_QR)


def test_running_states() -> None:
    assert {s for s in S if s.is_running} == {
        S.STARTING,
        S.SCAN_QR,
        S.PAIRING,
        S.CONNECTED,
        S.DISCONNECTED,
    }
