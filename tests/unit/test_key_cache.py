"""The short-lived cache of API keys (issue 15): a known key costs no database read for
a second; revoking through this process forgets it at once; the cache stays bounded."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from zapgate.domain.models import User
from zapgate.registry.credentials import hash_api_key
from zapgate.services.accounts import AccountService, KeyCache

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


class _CountingKeys:
    """The registry's key lookup, counted and slow enough for callers to meet."""

    def __init__(self) -> None:
        self.lookups = 0
        self.gate = asyncio.Event()

    async def authenticate(self, key: str) -> User | None:
        self.lookups += 1
        await self.gate.wait()
        return user(1) if key == "zg_good" else None


def _service() -> tuple[AccountService, _CountingKeys]:
    keys = _CountingKeys()
    return AccountService(SimpleNamespace(keys=keys)), keys  # type: ignore[arg-type]


async def test_requests_missing_together_share_one_lookup() -> None:
    service, keys = _service()
    waiting = [asyncio.ensure_future(service.authenticate("zg_good")) for _ in range(32)]
    await asyncio.sleep(0)
    keys.gate.set()
    assert await asyncio.gather(*waiting) == [user(1)] * 32
    assert keys.lookups == 1
    assert await service.authenticate("zg_good") == user(1) and keys.lookups == 1  # cached


async def test_a_caller_going_away_does_not_cancel_the_shared_lookup() -> None:
    service, keys = _service()
    first = asyncio.ensure_future(service.authenticate("zg_good"))
    second = asyncio.ensure_future(service.authenticate("zg_good"))
    await asyncio.sleep(0)
    first.cancel()
    keys.gate.set()
    assert await second == user(1) and keys.lookups == 1


async def test_a_lookup_that_began_before_a_revoke_is_not_kept() -> None:
    service, keys = _service()
    lookup = asyncio.ensure_future(service.authenticate("zg_good"))
    await asyncio.sleep(0)
    service.key_cache.forget_user(1)  # revoked while the lookup was reading
    keys.gate.set()
    assert await lookup == user(1)  # it answers what it read...
    assert service.key_cache.get(hash_api_key("zg_good")) is None  # ...but keeps nothing
