"""The short-lived cache of API keys (issue 15): a known key costs no database read for
a second; revoking through this process forgets it at once; the cache stays bounded."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from zapgate.domain.models import User
from zapgate.services.accounts import KeyCache

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def user(uid: int) -> User:
    return User(id=uid, email=f"u{uid}@example.com", is_admin=False, created_at=CREATED)


def test_an_entry_lives_for_the_ttl() -> None:
    cache = KeyCache(ttl=0.05)
    cache.put("h1", user(1))
    assert cache.get("h1") == user(1)
    time.sleep(0.06)
    assert cache.get("h1") is None


def test_forgetting_a_user_drops_every_key_of_theirs() -> None:
    cache = KeyCache()
    cache.put("a", user(1))
    cache.put("b", user(1))
    cache.put("c", user(2))
    cache.forget_user(1)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, None, user(2))


def test_the_cache_is_bounded() -> None:
    cache = KeyCache(size=3)
    for i in range(10):
        cache.put(f"k{i}", user(i))
    assert len(cache._entries) == 3
    assert cache.get("k9") == user(9) and cache.get("k0") is None
