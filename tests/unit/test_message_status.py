"""Message statuses: the rule that a status only moves forward."""

from __future__ import annotations

import pytest

from zapgate.domain.models import MessageStatus

S = MessageStatus


@pytest.mark.parametrize(
    ("old", "new", "ok"),
    [
        (S.PENDING, S.SENT, True),
        (S.SENT, S.DELIVERED, True),
        (S.DELIVERED, S.READ, True),
        (S.PENDING, S.READ, True),
        (S.READ, S.DELIVERED, False),
        (S.DELIVERED, S.SENT, False),
        (S.SENT, S.SENT, False),
        (S.PENDING, S.FAILED, True),
        (S.SENT, S.FAILED, True),
        (S.DELIVERED, S.FAILED, False),
        (S.READ, S.FAILED, False),
        (S.RECEIVED, S.FAILED, False),
        (S.FAILED, S.SENT, False),
        (S.FAILED, S.READ, False),
        (S.RECEIVED, S.READ, False),
    ],
)
def test_status_moves(old: MessageStatus, new: MessageStatus, ok: bool) -> None:
    assert old.may_move_to(new) is ok
