"""Issue 8 items 1, 3, 10 on every backend: the first user is the one admin however many
sign up at once; dashboard sign-ins end on the server; the per-user session limit holds
under concurrent creates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contract.registry.helpers import ROUTE, run_sql
from zapgate.errors import NotFound, SessionLimitReached, ValidationFailed
from zapgate.registry import Registry
from zapgate.services.accounts import AccountService


@pytest.fixture
async def registries(db_url: str) -> AsyncIterator[list[Registry]]:
    """Four registries on one database, like four processes: no in-process lock helps."""
    opened = [await Registry.open(db_url) for _ in range(4)]
    try:
        yield opened
    finally:
        for reg in opened:
            await reg.close()


async def test_parallel_first_sign_ups_give_exactly_one_admin(
    registries: list[Registry],
) -> None:
    services = [AccountService(reg) for reg in registries]
    users = await asyncio.gather(
        *(services[i % 4].sign_up(f"racer{i}@example.com", "password-1") for i in range(20))
    )
    assert len({u.id for u in users}) == 20
    assert sum(u.is_admin for u in users) == 1
    stored = await registries[0].users.list()
    assert [u.is_admin for u in stored].count(True) == 1


async def test_first_user_rule_for_created_users(registry: Registry) -> None:
    # `zapgate users create` uses the same rule: the first user administers.
    first = await registry.users.create("first@example.com", first_is_admin=True)
    second = await registry.users.create("second@example.com", first_is_admin=True)
    third = await registry.users.create("third@example.com", is_admin=True, first_is_admin=True)
    assert (first.is_admin, second.is_admin, third.is_admin) == (True, False, True)
    # Without the rule (an import) nobody becomes an admin by being first.
    assert (await registry.users.create("x@example.com")).is_admin is False


async def test_first_user_rule_does_not_hand_admin_to_an_imported_database(
    registry: Registry,
) -> None:
    await registry.users.create("legacy-1@zapgate.invalid", user_id=1)
    later = await registry.users.create("new@example.com", "password-1", first_is_admin=True)
    assert not later.is_admin


async def test_dashboard_session_open_check_revoke(registry: Registry) -> None:
    user = await registry.users.create("web@example.com", "password-1")
    other = await registry.users.create("other@example.com", "password-2")
    a = await registry.logins.open(user.id)
    b = await registry.logins.open(user.id)
    assert a != b and len(a) >= 32
    assert await registry.logins.check(a, user.id)
    assert not await registry.logins.check(a, other.id)  # the id names one user only
    assert not await registry.logins.check("made-up", user.id)
    await registry.logins.revoke(a)
    assert not await registry.logins.check(a, user.id)
    # Signing out of one browser leaves the user's other browsers signed in.
    assert await registry.logins.check(b, user.id)


async def test_a_new_password_ends_every_session(registry: Registry, raw: AsyncEngine) -> None:
    user = await registry.users.create("pw@example.com", "password-1")
    sessions = [await registry.logins.open(user.id) for _ in range(3)]
    fresh = PasswordHasher().hash("password-2")
    await run_sql(raw, "UPDATE users SET password_hash = :h WHERE id = :id", h=fresh, id=user.id)
    assert [await registry.logins.check(s, user.id) for s in sessions] == [False] * 3
    # Signed in with the new password: a session that works.
    assert await registry.users.verify_password("pw@example.com", "password-2") is not None
    assert await registry.logins.check(await registry.logins.open(user.id), user.id)


async def test_a_rehash_of_the_same_password_keeps_sessions(
    registry: Registry, raw: AsyncEngine
) -> None:
    user = await registry.users.create("old@example.com")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    await run_sql(raw, "UPDATE users SET password_hash = :h WHERE id = :id", h=weak, id=user.id)
    sid = await registry.logins.open(user.id)
    assert await registry.users.verify_password("old@example.com", "pw") is not None  # rehashed
    assert await registry.logins.check(sid, user.id)


async def test_deleting_a_user_ends_their_sessions(registry: Registry, raw: AsyncEngine) -> None:
    user = await registry.users.create("gone@example.com", "password-1")
    sid = await registry.logins.open(user.id)
    await run_sql(raw, "DELETE FROM users WHERE id = :id", id=user.id)
    assert not await registry.logins.check(sid, user.id)


async def test_parallel_creates_stop_exactly_at_the_limit(registries: list[Registry]) -> None:
    user = await registries[0].users.create("many@example.com")

    async def create(i: int) -> bool:
        try:
            await registries[i % 4].sessions.get_or_create(
                user.id, f"s{i}", engine="sim", route=ROUTE, limit=10
            )
        except SessionLimitReached as err:
            assert err.errcode == "session_limit_reached" and err.status == 409
            assert err.to_dict()["limit"] == 10
            return False
        return True

    results = await asyncio.gather(*(create(i) for i in range(50)))
    assert results.count(True) == 10
    assert len(await registries[0].sessions.list(user.id)) == 10


async def test_limit_per_user_override_and_existing_names(registry: Registry) -> None:
    user = await registry.users.create("lim@example.com")
    for i in range(2):
        await registry.sessions.get_or_create(user.id, f"s{i}", engine="sim", route=ROUTE, limit=2)
    with pytest.raises(SessionLimitReached):
        await registry.sessions.get_or_create(user.id, "s2", engine="sim", route=ROUTE, limit=2)
    # At the limit, an existing session is still found.
    again, created = await registry.sessions.get_or_create(
        user.id, "s0", engine="sim", route=ROUTE, limit=2
    )
    assert again.name == "s0" and not created
    # An admin raises this user's own limit over the default.
    await registry.users.set_max_sessions(user.id, 3)
    assert (await registry.users.get(user.id)).max_sessions == 3  # type: ignore[union-attr]
    await registry.sessions.get_or_create(user.id, "s2", engine="sim", route=ROUTE, limit=2)
    with pytest.raises(SessionLimitReached):
        await registry.sessions.get_or_create(user.id, "s3", engine="sim", route=ROUTE, limit=2)
    # Back to the default.
    await registry.users.set_max_sessions(user.id, None)
    assert (await registry.users.get(user.id)).max_sessions is None  # type: ignore[union-attr]
    with pytest.raises(ValidationFailed):
        await registry.users.set_max_sessions(user.id, -1)
    with pytest.raises(NotFound):
        await registry.users.set_max_sessions(user.id + 1000, 5)
    # No limit at all (an import): created whatever the count.
    _, created = await registry.sessions.get_or_create(user.id, "s9", engine="sim", route=ROUTE)
    assert created
