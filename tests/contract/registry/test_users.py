"""registry.users: accounts, e-mails, passwords, admin flag."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contract.registry.helpers import fetch_rows, is_utc, run_sql
from zapgate.errors import Conflict, NotFound
from zapgate.registry import Registry, UserExists


async def test_create_and_get_user(registry: Registry) -> None:
    user = await registry.users.create("  Ana@Example.COM ", "s3cret", is_admin=True)
    assert user.email == "ana@example.com"
    assert user.is_admin
    assert is_utc(user.created_at)
    assert await registry.users.get(user.id) == user
    assert await registry.users.get_by_email("ANA@example.com") == user
    assert await registry.users.get(user.id + 1000) is None
    assert await registry.users.get_by_email("nobody@example.com") is None


async def test_duplicate_email_is_a_conflict(registry: Registry) -> None:
    await registry.users.create("dup@example.com")
    with pytest.raises(UserExists) as info:
        await registry.users.create(" DUP@example.com")
    assert isinstance(info.value, Conflict)
    assert info.value.errcode == "user_exists"
    assert info.value.status == 409


async def test_explicit_user_id_and_later_inserts(registry: Registry) -> None:
    legacy = await registry.users.create("legacy-7@zapgate.invalid", user_id=7)
    assert legacy.id == 7
    assert await registry.users.get(7) == legacy
    # The id sequence moved past the imported id: ordinary inserts don't collide.
    later = [await registry.users.create(f"n{i}@example.com") for i in range(3)]
    assert all(u.id > 7 for u in later)
    assert len({u.id for u in later}) == 3
    with pytest.raises(Conflict):
        await registry.users.create("other@example.com", user_id=7)


async def test_verify_password(registry: Registry) -> None:
    user = await registry.users.create("pw@example.com", "correct horse")
    assert await registry.users.verify_password(" PW@example.com", "correct horse") == user
    assert await registry.users.verify_password("pw@example.com", "wrong") is None
    assert await registry.users.verify_password("nobody@example.com", "correct horse") is None
    await registry.users.create("nopw@example.com")
    assert await registry.users.verify_password("nopw@example.com", "") is None
    assert await registry.users.verify_password("nopw@example.com", "anything") is None


async def test_password_hash_is_argon2_and_never_plaintext(
    registry: Registry, raw: AsyncEngine
) -> None:
    await registry.users.create("hash@example.com", "plain-password")
    [(stored,)] = await fetch_rows(raw, "SELECT password_hash FROM users")
    assert stored.startswith("$argon2")
    assert "plain-password" not in stored


async def test_weak_password_hash_is_upgraded_on_login(
    registry: Registry, raw: AsyncEngine
) -> None:
    user = await registry.users.create("old@example.com")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    await run_sql(raw, "UPDATE users SET password_hash = :h WHERE id = :id", h=weak, id=user.id)
    assert await registry.users.verify_password("old@example.com", "pw") == user
    [(stored,)] = await fetch_rows(
        raw, "SELECT password_hash FROM users WHERE id = :id", id=user.id
    )
    assert stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)
    assert await registry.users.verify_password("old@example.com", "pw") == user


async def test_set_admin(registry: Registry) -> None:
    user = await registry.users.create("adm@example.com")
    await registry.users.set_admin(user.id, True)
    assert (await registry.users.get(user.id)).is_admin  # type: ignore[union-attr]
    await registry.users.set_admin(user.id, False)
    assert not (await registry.users.get(user.id)).is_admin  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await registry.users.set_admin(user.id + 1000, True)
