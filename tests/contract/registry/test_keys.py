"""registry.keys: API keys shown once, stored hashed, authenticated and revoked."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contract.registry.helpers import fetch_rows, is_utc
from zapgate.errors import NotFound
from zapgate.registry import Registry
from zapgate.registry.tables import ApiKeyRow


async def test_api_key_is_shown_once_and_only_its_hash_is_stored(
    registry: Registry, raw: AsyncEngine
) -> None:
    user = await registry.users.create("key@example.com")
    api_key, plaintext = await registry.keys.create(user.id, "ci")
    assert plaintext.startswith("zg_") and len(plaintext) >= 40
    assert api_key.prefix == plaintext[:10]
    assert api_key.name == "ci" and api_key.user_id == user.id
    assert api_key.last_used_at is None and is_utc(api_key.created_at)
    rows = await fetch_rows(raw, "SELECT * FROM api_keys")
    assert len(rows) == 1
    assert all(plaintext not in str(value) for value in rows[0])
    [(key_hash,)] = await fetch_rows(raw, "SELECT key_hash FROM api_keys")
    assert key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    # Nothing returned later can give the key back.
    assert all(plaintext not in repr(k) for k in await registry.keys.list(user.id))


async def test_authenticate_api_key(registry: Registry) -> None:
    user = await registry.users.create("auth@example.com")
    _, key = await registry.keys.create(user.id)
    assert await registry.keys.authenticate(key) == user
    for bad in ["", "zg_", key + "x", key[:-1], "Bearer " + key, "zg_" + "a" * 5000]:
        assert await registry.keys.authenticate(bad) is None


async def test_last_used_at_is_written_at_most_once_a_minute(
    registry: Registry, raw: AsyncEngine
) -> None:
    user = await registry.users.create("used@example.com")
    api_key, key = await registry.keys.create(user.id)
    await registry.keys.authenticate(key)
    [first] = await registry.keys.list(user.id)
    assert is_utc(first.last_used_at)
    await registry.keys.authenticate(key)
    [second] = await registry.keys.list(user.id)
    assert second.last_used_at == first.last_used_at
    old = datetime.now(UTC) - timedelta(minutes=5)
    async with raw.begin() as conn:
        await conn.execute(
            update(ApiKeyRow).where(ApiKeyRow.id == api_key.id).values(last_used_at=old)
        )
    await registry.keys.authenticate(key)
    [third] = await registry.keys.list(user.id)
    assert third.last_used_at is not None and third.last_used_at > old + timedelta(minutes=4)


async def test_revoked_keys_are_rejected(registry: Registry) -> None:
    alice = await registry.users.create("alice@example.com")
    bob = await registry.users.create("bob@example.com")
    k1, key1 = await registry.keys.create(alice.id, "one")
    k2, key2 = await registry.keys.create(alice.id, "two")
    assert [k.id for k in await registry.keys.list(alice.id)] == [k1.id, k2.id]
    assert await registry.keys.revoke(bob.id, k1.id) is False  # not bob's key
    assert await registry.keys.authenticate(key1) == alice
    assert await registry.keys.revoke(alice.id, k1.id) is True
    assert await registry.keys.revoke(alice.id, k1.id) is False  # already revoked
    assert await registry.keys.authenticate(key1) is None
    assert await registry.keys.authenticate(key2) == alice
    assert [k.id for k in await registry.keys.list(alice.id)] == [k2.id]
    assert await registry.keys.list(bob.id) == []


async def test_api_key_for_unknown_user(registry: Registry) -> None:
    with pytest.raises(NotFound):
        await registry.keys.create(424242)
