"""The registry's pure rules: timestamps, e-mails, key material."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

from zapgate.registry import credentials
from zapgate.registry.convert import as_utc
from zapgate.registry.users import normalize_email


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
