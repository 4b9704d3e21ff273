"""The registry's pure rules: status moves, timestamps, key material."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from zapgate.domain.models import MessageStatus
from zapgate.registry import credentials
from zapgate.registry.registry import _may_move, as_utc, normalize_email

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
    assert _may_move(old, new) is ok


def test_as_utc() -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    assert as_utc(naive) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    local = datetime(2024, 1, 2, 0, 4, 5, tzinfo=timezone(timedelta(hours=-3)))
    converted = as_utc(local)
    assert converted == local and converted.tzinfo is UTC and converted.hour == 3


def test_normalize_email() -> None:
    assert normalize_email("  Ana@Example.COM\n") == "ana@example.com"


def test_api_key_material() -> None:
    key = credentials.new_api_key()
    assert key.startswith("zg_") and len(key) == 3 + 43
    assert credentials.new_api_key() != key
    assert credentials.hash_api_key(key) == hashlib.sha256(key.encode()).hexdigest()


def test_password_hashing() -> None:
    stored = credentials.hash_password("pw")
    assert stored.startswith("$argon2id$")
    assert credentials.check_password(stored, "pw")
    assert not credentials.check_password(stored, "PW")
    assert not credentials.check_password(None, "pw")
    assert not credentials.check_password("not-a-hash", "pw")
    assert not credentials.needs_rehash(stored)
