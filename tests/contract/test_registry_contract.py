"""The registry contract: one suite, run against every backend (SQLite and PostgreSQL).

PostgreSQL tests use a throw-away database per test on the server named by
ZAPGATE_TEST_PG_URL (an admin URL; default: the local server, user postgres). They fail
when the server is unreachable, unless ZAPGATE_TEST_SKIP_PG=1.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from argon2 import PasswordHasher
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from zapgate.domain.ids import is_valid_client_id
from zapgate.domain.models import MediaMeta, MessageStatus, Route
from zapgate.domain.state import SessionState
from zapgate.errors import Conflict, NotFound, SessionNotFound, ValidationFailed
from zapgate.registry import Registry, UserExists, migrator
from zapgate.registry.tables import ApiKeyRow, metadata

PG_ADMIN_URL = os.environ.get(
    "ZAPGATE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
ROUTE = Route(worker_id="w1", worker_url="http://127.0.0.1:5001", port=5001)
EMBEDDED = Route(worker_id="embedded", worker_url=None, port=None)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(_asyncpg_dsn(PG_ADMIN_URL), timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    where = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
    if os.environ.get("ZAPGATE_TEST_SKIP_PG") == "1":
        pytest.skip(f"PostgreSQL unreachable at {where} and ZAPGATE_TEST_SKIP_PG=1")
    pytest.fail(
        f"PostgreSQL is not reachable at {where}: {problem}. Start the server, point "
        "ZAPGATE_TEST_PG_URL at one (an admin URL), or set ZAPGATE_TEST_SKIP_PG=1 to skip "
        "the PostgreSQL half of the registry contract.",
        pytrace=False,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    if request.param == "sqlite":
        # A directory that doesn't exist yet: opening the registry must create it.
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'zapgate.db'}"
        return
    name = f"zapgate_test_{secrets.token_hex(6)}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await _pg_admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def registry(db_url: str) -> AsyncIterator[Registry]:
    reg = await Registry.open(db_url)
    try:
        yield reg
    finally:
        await reg.close()


@pytest.fixture
async def raw(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A separate engine for looking at (and tampering with) the raw tables."""
    engine = create_async_engine(db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _rows(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.begin() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def _exec(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


def _is_utc(value: datetime | None) -> bool:
    return value is not None and value.utcoffset() == timedelta(0)


# schema and lifecycle


async def test_opened_registry_is_at_head(registry: Registry, db_url: str) -> None:
    versions = Path(migrator.__file__).parent / "migrations" / "versions"
    newest = max(p.name.split("_")[0] for p in versions.glob("[0-9]*.py"))
    assert registry.head_revision() == newest
    assert await registry.revision() == registry.head_revision()
    assert registry.dialect == make_url(db_url).get_backend_name()
    await registry.ping()


async def test_migrations_are_idempotent(registry: Registry, db_url: str) -> None:
    user = await registry.users.create("keep@example.com")
    await registry.migrate()
    second = await Registry.open(db_url)
    try:
        await second.migrate()
        assert await second.revision() == second.head_revision()
        assert await second.users.get(user.id) == user
    finally:
        await second.close()


async def test_concurrent_first_opens_all_reach_head(db_url: str) -> None:
    # Several processes starting at once on a fresh database (a cluster deploy).
    opened = await asyncio.gather(*(Registry.open(db_url) for _ in range(4)))
    try:
        for reg in opened:
            assert await reg.revision() == reg.head_revision()
        user = await opened[0].users.create("after@example.com")
        assert await opened[3].users.get(user.id) == user
    finally:
        for reg in opened:
            await reg.close()


_OPEN_IN_A_PROCESS = """
import asyncio, sys
from zapgate.registry import Registry

async def main() -> None:
    reg = await Registry.open(sys.argv[1])
    try:
        print(await reg.revision())
    finally:
        await reg.close()

asyncio.run(main())
"""


async def test_processes_racing_to_migrate_all_succeed(db_url: str) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _OPEN_IN_A_PROCESS,
            db_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [await p.communicate() for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == migrator.head_revision()


async def test_open_without_migrate_leaves_the_database_alone(db_url: str) -> None:
    reg = await Registry.open(db_url, migrate=False)
    try:
        assert await reg.revision() is None
        await reg.migrate()
        assert await reg.revision() == reg.head_revision()
    finally:
        await reg.close()


async def test_migrations_match_the_models(registry: Registry, raw: AsyncEngine) -> None:
    async with raw.connect() as conn:
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata)
        )
    assert diff == []


# users


async def test_create_and_get_user(registry: Registry) -> None:
    user = await registry.users.create("  Ana@Example.COM ", "s3cret", is_admin=True)
    assert user.email == "ana@example.com"
    assert user.is_admin
    assert _is_utc(user.created_at)
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
    [(stored,)] = await _rows(raw, "SELECT password_hash FROM users")
    assert stored.startswith("$argon2")
    assert "plain-password" not in stored


async def test_weak_password_hash_is_upgraded_on_login(
    registry: Registry, raw: AsyncEngine
) -> None:
    user = await registry.users.create("old@example.com")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    await _exec(raw, "UPDATE users SET password_hash = :h WHERE id = :id", h=weak, id=user.id)
    assert await registry.users.verify_password("old@example.com", "pw") == user
    [(stored,)] = await _rows(raw, "SELECT password_hash FROM users WHERE id = :id", id=user.id)
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


# api keys


async def test_api_key_is_shown_once_and_only_its_hash_is_stored(
    registry: Registry, raw: AsyncEngine
) -> None:
    user = await registry.users.create("key@example.com")
    api_key, plaintext = await registry.keys.create(user.id, "ci")
    assert plaintext.startswith("zg_") and len(plaintext) >= 40
    assert api_key.prefix == plaintext[:10]
    assert api_key.name == "ci" and api_key.user_id == user.id
    assert api_key.last_used_at is None and _is_utc(api_key.created_at)
    rows = await _rows(raw, "SELECT * FROM api_keys")
    assert len(rows) == 1
    assert all(plaintext not in str(value) for value in rows[0])
    [(key_hash,)] = await _rows(raw, "SELECT key_hash FROM api_keys")
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
    assert _is_utc(first.last_used_at)
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


# sessions


async def test_get_or_create_session(registry: Registry) -> None:
    user = await registry.users.create("s@example.com")
    session, created = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=ROUTE
    )
    assert created
    assert session.user_id == user.id and session.name == "default"
    assert session.state is SessionState.STOPPED and session.state_reason is None
    assert session.phone is None and session.engine == "sim"
    assert session.route == ROUTE
    assert session.client_id.startswith(f"u{user.id}-")
    assert is_valid_client_id(session.client_id)
    assert session.session_dir == f"sessions/{session.client_id}"
    assert _is_utc(session.created_at) and _is_utc(session.updated_at)

    again, created_again = await registry.sessions.get_or_create(
        user.id, "default", engine="whatsmeow", route=EMBEDDED
    )
    assert not created_again
    assert again == session  # a get: the second call's engine and route are ignored
    assert await registry.sessions.get(user.id, "default") == session
    assert await registry.sessions.get_by_id(session.id) == session
    assert await registry.sessions.get_by_client_id(session.client_id) == session
    assert await registry.sessions.get(user.id, "other") is None
    assert await registry.sessions.get_by_id(session.id + 1000) is None
    assert await registry.sessions.get_by_client_id("u0-nope") is None


async def test_embedded_route_has_no_url_or_port(registry: Registry) -> None:
    user = await registry.users.create("e@example.com")
    session, _ = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=EMBEDDED
    )
    assert session.worker_url is None and session.port is None
    assert (await registry.sessions.get_by_id(session.id)).route == EMBEDDED  # type: ignore[union-attr]


async def test_fifty_concurrent_get_or_create_make_one_row(registry: Registry) -> None:
    user = await registry.users.create("race@example.com")
    results = await asyncio.gather(
        *(
            registry.sessions.get_or_create(user.id, "default", engine="sim", route=ROUTE)
            for _ in range(50)
        )
    )
    assert sum(created for _, created in results) == 1
    assert len({s.id for s, _ in results}) == 1
    assert len({s.client_id for s, _ in results}) == 1
    assert len(await registry.sessions.list(user.id)) == 1


async def test_get_or_create_is_race_safe_across_processes(registry: Registry, db_url: str) -> None:
    # A second Registry has its own in-process locks, like another web process: only the
    # database's unique constraint stands between them.
    other = await Registry.open(db_url)
    try:
        user = await registry.users.create("procs@example.com")
        calls = [
            reg.sessions.get_or_create(user.id, "shared", engine="sim", route=ROUTE)
            for _ in range(25)
            for reg in (registry, other)
        ]
        results = await asyncio.gather(*calls)
    finally:
        await other.close()
    assert sum(created for _, created in results) == 1
    assert len({s.id for s, _ in results}) == 1
    assert len(await registry.sessions.list(user.id)) == 1


async def test_different_names_and_users_get_different_sessions(registry: Registry) -> None:
    a = await registry.users.create("a@example.com")
    b = await registry.users.create("b@example.com")
    results = await asyncio.gather(
        *(
            registry.sessions.get_or_create(u.id, name, engine="sim", route=ROUTE)
            for u in (a, b)
            for name in ("default", "shop", "x")
            for _ in range(3)
        )
    )
    assert sum(created for _, created in results) == 6
    sessions = await registry.sessions.list()
    assert [(s.user_id, s.name) for s in sessions] == sorted(
        (u.id, n) for u in (a, b) for n in ("default", "shop", "x")
    )
    assert len({s.client_id for s in sessions}) == 6
    assert [s.name for s in await registry.sessions.list(b.id)] == ["default", "shop", "x"]


@pytest.mark.parametrize(
    "name", ["..-x", "../../etc/passwd", "a/b", "ñandú-🚀", "CON", "a\\b", "u1-abc"]
)
async def test_client_id_is_never_derived_from_the_name(registry: Registry, name: str) -> None:
    user = await registry.users.create("names@example.com")
    session, created = await registry.sessions.get_or_create(
        user.id, name, engine="sim", route=ROUTE
    )
    assert created and session.name == name
    assert is_valid_client_id(session.client_id)
    assert name not in session.client_id and name not in session.session_dir
    assert ".." not in session.session_dir
    assert session.session_dir == f"sessions/{session.client_id}"
    assert await registry.sessions.get(user.id, name) == session


async def test_explicit_legacy_client_id(registry: Registry) -> None:
    user = await registry.users.create("legacy@example.com")
    session, created = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=ROUTE, client_id="user_3"
    )
    assert created
    assert session.client_id == "user_3" and session.session_dir == "sessions/user_3"
    other = await registry.users.create("other@example.com")
    with pytest.raises(Conflict):
        await registry.sessions.get_or_create(
            other.id, "default", engine="sim", route=ROUTE, client_id="user_3"
        )
    assert await registry.sessions.get(other.id, "default") is None


@pytest.mark.parametrize("bad", ["", "../x", "a b", "a/b", "-a", "x" * 65, "ção"])
async def test_invalid_explicit_client_id_is_refused(registry: Registry, bad: str) -> None:
    user = await registry.users.create("bad@example.com")
    with pytest.raises(ValidationFailed):
        await registry.sessions.get_or_create(
            user.id, "default", engine="sim", route=ROUTE, client_id=bad
        )
    assert await registry.sessions.list(user.id) == []


async def test_session_for_unknown_user(registry: Registry) -> None:
    with pytest.raises(NotFound):
        await registry.sessions.get_or_create(424242, "default", engine="sim", route=ROUTE)


async def test_update_route(registry: Registry) -> None:
    user = await registry.users.create("route@example.com")
    session, _ = await registry.sessions.get_or_create(
        user.id,
        "default",
        engine="sim",
        route=Route(worker_id="old", worker_url="http://x:5003", port=5003),
    )
    moved = await registry.sessions.update_route(session.id, ROUTE)
    assert moved.route == ROUTE
    assert moved.client_id == session.client_id and moved.session_dir == session.session_dir
    assert moved.updated_at >= session.updated_at
    assert await registry.sessions.get_by_id(session.id) == moved
    with pytest.raises(SessionNotFound):
        await registry.sessions.update_route(session.id + 1000, ROUTE)


async def test_update_state_and_phone(registry: Registry) -> None:
    user = await registry.users.create("state@example.com")
    session, _ = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=ROUTE
    )
    s1 = await registry.sessions.update_state(session.id, SessionState.STARTING, None)
    assert s1 is not None and s1.state is SessionState.STARTING and s1.phone is None
    s2 = await registry.sessions.update_state(
        session.id, SessionState.CONNECTED, "linked", phone="+5511999990003"
    )
    assert s2 is not None
    assert (s2.state, s2.state_reason, s2.phone) == (
        SessionState.CONNECTED,
        "linked",
        "+5511999990003",
    )
    assert s2.updated_at >= s1.updated_at >= session.updated_at
    # phone=None keeps the stored number
    s3 = await registry.sessions.update_state(session.id, SessionState.DISCONNECTED, "network")
    assert s3 is not None and s3.phone == "+5511999990003"
    assert s3.state is SessionState.DISCONNECTED
    assert await registry.sessions.get_by_id(session.id) == s3
    await registry.sessions.clear_phone(session.id)
    cleared = await registry.sessions.get_by_id(session.id)
    assert cleared is not None and cleared.phone is None
    assert cleared.state is SessionState.DISCONNECTED
    assert (
        await registry.sessions.update_state(session.id + 1000, SessionState.FAILED, "gone") is None
    )


async def test_find_sessions_by_phone(registry: Registry) -> None:
    a = await registry.users.create("pa@example.com")
    b = await registry.users.create("pb@example.com")
    sa, _ = await registry.sessions.get_or_create(a.id, "default", engine="sim", route=ROUTE)
    sb, _ = await registry.sessions.get_or_create(b.id, "default", engine="sim", route=ROUTE)
    await registry.sessions.get_or_create(b.id, "other", engine="sim", route=ROUTE)
    await registry.sessions.update_state(
        sa.id, SessionState.CONNECTED, None, phone="+5511999990001"
    )
    await registry.sessions.update_state(
        sb.id, SessionState.CONNECTED, None, phone="+5511999990001"
    )
    found = await registry.sessions.find_by_phone("+5511999990001")
    assert [s.id for s in found] == [sa.id, sb.id]
    assert await registry.sessions.find_by_phone("+5511999990009") == []


async def test_delete_session_cascades_to_messages(registry: Registry, raw: AsyncEngine) -> None:
    user = await registry.users.create("del@example.com")
    session, _ = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=ROUTE
    )
    keep, _ = await registry.sessions.get_or_create(user.id, "keep", engine="sim", route=ROUTE)
    for i in range(3):
        await _add(registry, session.id, f"M{i}")
    await _add(registry, keep.id, "K0")
    await registry.sessions.delete(session.id)
    assert await registry.sessions.get_by_id(session.id) is None
    assert await registry.sessions.get(user.id, "default") is None
    assert await registry.messages.get(session.id, "M0") is None
    rows = await _rows(raw, "SELECT session_id FROM messages")
    assert rows == [(keep.id,)]
    await registry.sessions.delete(session.id)  # deleting twice is harmless
    # The name is free again, with a fresh client id.
    again, created = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=ROUTE
    )
    assert created and again.client_id != session.client_id


# messages


async def _session(registry: Registry, email: str = "m@example.com") -> int:
    user = await registry.users.create(email)
    session, _ = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=ROUTE
    )
    return session.id


async def _add(
    registry: Registry,
    session_id: int,
    id: str,
    *,
    direction: str = "out",
    status: MessageStatus = MessageStatus.PENDING,
    idempotency_key: str | None = None,
) -> Any:
    message, _ = await registry.messages.add(
        session_id,
        id=id,
        direction=direction,
        chat="+5511999990003",
        text=f"text of {id}",
        status=status,
        idempotency_key=idempotency_key,
    )
    return message


async def test_add_and_get_message(registry: Registry) -> None:
    sid = await _session(registry)
    message, created = await registry.messages.add(
        sid,
        id="3EB0AAA",
        direction="out",
        chat="+5511999990003",
        text="olá 👋",
        status=MessageStatus.PENDING,
        idempotency_key="k1",
    )
    assert created
    assert (message.session_id, message.id, message.direction, message.chat, message.text) == (
        sid,
        "3EB0AAA",
        "out",
        "+5511999990003",
        "olá 👋",
    )
    assert message.status is MessageStatus.PENDING and message.status_reason is None
    assert message.idempotency_key == "k1"
    assert _is_utc(message.created_at) and _is_utc(message.updated_at)
    assert await registry.messages.get(sid, "3EB0AAA") == message
    assert await registry.messages.get_by_idempotency_key(sid, "k1") == message
    assert await registry.messages.get(sid, "nope") is None
    assert await registry.messages.get_by_idempotency_key(sid, "nope") is None


async def test_add_message_is_idempotent_on_id(registry: Registry) -> None:
    sid = await _session(registry)
    first = await _add(registry, sid, "DUP", direction="in", status=MessageStatus.RECEIVED)
    again, created = await registry.messages.add(
        sid, id="DUP", direction="in", chat="other", text="other", status=MessageStatus.RECEIVED
    )
    assert not created and again == first
    # Concurrent duplicates too (at-least-once delivery from the worker journal).
    results = await asyncio.gather(
        *(
            registry.messages.add(
                sid, id="RACE", direction="in", chat="c", text="t", status=MessageStatus.RECEIVED
            )
            for _ in range(10)
        )
    )
    assert sum(created for _, created in results) == 1
    assert len({m.pk for m, _ in results}) == 1


async def test_same_message_id_in_two_sessions(registry: Registry) -> None:
    s1 = await _session(registry, "one@example.com")
    s2 = await _session(registry, "two@example.com")
    m1 = await _add(registry, s1, "SAME", idempotency_key="k")
    m2 = await _add(registry, s2, "SAME", idempotency_key="k")
    assert m1.pk != m2.pk
    assert (await registry.messages.get(s2, "SAME")) == m2


async def test_idempotency_key_is_unique_per_session(registry: Registry) -> None:
    sid = await _session(registry)
    first = await _add(registry, sid, "A1", idempotency_key="order-17")
    second, created = await registry.messages.add(
        sid,
        id="A2",
        direction="out",
        chat="c",
        text="t",
        status=MessageStatus.PENDING,
        idempotency_key="order-17",
    )
    assert not created and second == first
    assert await registry.messages.get(sid, "A2") is None
    # Messages without a key never collide with each other.
    await _add(registry, sid, "B1")
    await _add(registry, sid, "B2")
    items, _ = await registry.messages.list(sid)
    assert [m.id for m in items] == ["B2", "B1", "A1"]


async def test_message_timestamps_are_utc(registry: Registry) -> None:
    sid = await _session(registry)
    brt = timezone(timedelta(hours=-3))
    local = datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=brt)
    message, _ = await registry.messages.add(
        sid,
        id="T1",
        direction="in",
        chat="c",
        text=None,
        status=MessageStatus.RECEIVED,
        created_at=local,
    )
    assert message.created_at == local and message.created_at.tzinfo == UTC
    stored = await registry.messages.get(sid, "T1")
    assert stored is not None and stored.created_at == local and _is_utc(stored.created_at)
    assert stored.text is None
    naive, _ = await registry.messages.add(
        sid,
        id="T2",
        direction="in",
        chat="c",
        text="x",
        status=MessageStatus.RECEIVED,
        created_at=datetime(2024, 5, 1, 12, 0),
    )
    assert naive.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert (await registry.messages.get(sid, "T2")).created_at == naive.created_at  # type: ignore[union-attr]


async def test_add_message_validates(registry: Registry) -> None:
    sid = await _session(registry)
    with pytest.raises(ValidationFailed):
        await registry.messages.add(
            sid, id="X", direction="sideways", chat="c", text="t", status=MessageStatus.PENDING
        )
    with pytest.raises(SessionNotFound):
        await registry.messages.add(
            sid + 1000, id="X", direction="out", chat="c", text="t", status=MessageStatus.PENDING
        )


async def test_message_status_only_moves_forward(registry: Registry) -> None:
    sid = await _session(registry)
    await _add(registry, sid, "M")
    S = MessageStatus

    async def move(status: MessageStatus, reason: str | None = None) -> MessageStatus:
        message = await registry.messages.update_status(sid, "M", status, reason)
        assert message is not None
        return message.status

    assert await move(S.SENT) is S.SENT
    assert await move(S.PENDING) is S.SENT
    assert await move(S.READ) is S.READ
    assert await move(S.DELIVERED) is S.READ  # a late delivery ack never overwrites read
    assert await move(S.SENT) is S.READ
    assert await move(S.FAILED, "late") is S.READ  # a delivered message can't fail
    stored = await registry.messages.get(sid, "M")
    assert stored is not None and stored.status is S.READ and stored.status_reason is None
    assert stored.updated_at >= stored.created_at

    await _add(registry, sid, "F")
    failed = await registry.messages.update_status(sid, "F", S.FAILED, "worker_unreachable")
    assert failed is not None
    assert (failed.status, failed.status_reason) == (S.FAILED, "worker_unreachable")
    for later in (S.SENT, S.DELIVERED, S.READ, S.PENDING):
        assert (await registry.messages.update_status(sid, "F", later)).status is S.FAILED  # type: ignore[union-attr]

    await _add(registry, sid, "G", status=S.SENT)
    assert (await registry.messages.update_status(sid, "G", S.FAILED)).status is S.FAILED  # type: ignore[union-attr]
    await _add(registry, sid, "H", status=S.DELIVERED)
    assert (await registry.messages.update_status(sid, "H", S.FAILED)).status is S.DELIVERED  # type: ignore[union-attr]

    assert await registry.messages.update_status(sid, "unknown", S.READ) is None
    assert await registry.messages.update_status(sid + 1000, "M", S.READ) is None


async def test_racing_acks_end_on_the_highest_status(registry: Registry) -> None:
    sid = await _session(registry)
    await _add(registry, sid, "R", status=MessageStatus.SENT)
    order = [MessageStatus.READ, MessageStatus.DELIVERED, MessageStatus.SENT] * 5
    await asyncio.gather(*(registry.messages.update_status(sid, "R", s) for s in order))
    assert (await registry.messages.get(sid, "R")).status is MessageStatus.READ  # type: ignore[union-attr]


async def test_list_messages_pages_newest_first(registry: Registry) -> None:
    sid = await _session(registry)
    other = await _session(registry, "noise@example.com")
    ids = [f"M{i}" for i in range(7)]
    for i, mid in enumerate(ids):
        await _add(registry, sid, mid, direction="in" if i % 2 else "out")
        await _add(registry, other, f"noise{i}")

    page1, cursor1 = await registry.messages.list(sid, limit=3)
    assert [m.id for m in page1] == ["M6", "M5", "M4"]
    assert cursor1 == page1[-1].pk
    page2, cursor2 = await registry.messages.list(sid, limit=3, before=cursor1)
    assert [m.id for m in page2] == ["M3", "M2", "M1"]
    page3, cursor3 = await registry.messages.list(sid, limit=3, before=cursor2)
    assert [m.id for m in page3] == ["M0"]
    assert cursor3 is None

    everything, last = await registry.messages.list(sid)
    assert [m.id for m in everything] == list(reversed(ids)) and last is None
    exact, none = await registry.messages.list(sid, limit=7)
    assert len(exact) == 7 and none is None

    inbound, _ = await registry.messages.list(sid, direction="in")
    assert [m.id for m in inbound] == ["M5", "M3", "M1"]
    outbound, cur = await registry.messages.list(sid, direction="out", limit=2)
    assert [m.id for m in outbound] == ["M6", "M4"]
    rest, end = await registry.messages.list(sid, direction="out", limit=2, before=cur)
    assert [m.id for m in rest] == ["M2", "M0"] and end is None

    assert await registry.messages.list(sid + 1000) == ([], None)
    bad_args: list[dict[str, Any]] = [{"limit": 0}, {"limit": -1}, {"direction": "both"}]
    for bad in bad_args:
        with pytest.raises(ValidationFailed):
            await registry.messages.list(sid, **bad)


# journal cursors


async def test_worker_cursors(registry: Registry) -> None:
    assert await registry.cursors.get("http://w1:5001") == 0
    await registry.cursors.set("http://w1:5001", 17)
    assert await registry.cursors.get("http://w1:5001") == 17
    await registry.cursors.set("http://w1:5001", 42)
    assert await registry.cursors.get("http://w1:5001") == 42
    assert await registry.cursors.get("http://w2:5001") == 0
    big = 2**40  # journals outlive 32-bit counters
    await asyncio.gather(*(registry.cursors.set(f"w{i}", big + i) for i in range(10)))
    assert [await registry.cursors.get(f"w{i}") for i in range(10)] == [big + i for i in range(10)]


async def test_media_message_keeps_its_media_and_reports_it(registry: Registry) -> None:
    user = await registry.users.create("media@example.com")
    session, _ = await registry.sessions.get_or_create(user.id, "main", engine="sim", route=ROUTE)
    media = MediaMeta(type="image", mime="image/png", size=70, filename="a.png", ref="media/x")
    message, created = await registry.messages.add(
        session.id,
        id="3EB0MEDIA",
        direction="in",
        chat="+5511999990003",
        text="caption",
        status=MessageStatus.RECEIVED,
        media=media,
    )
    assert created and message.media == media
    again = await registry.messages.get(session.id, "3EB0MEDIA")
    assert again is not None and again.media == media
    (event,) = [
        e
        for e in await registry.outbox.list_events(user.id, session_id=session.id, after=0)
        if e.type == "message.received"
    ]
    assert event.data["media"] == {
        "type": "image",
        "mime": "image/png",
        "filename": "a.png",
        "size": 70,
        "url": "/v1/sessions/main/messages/3EB0MEDIA/media",
    }
    plain = await _add(registry, session.id, "3EB0TEXT")
    assert plain.media is None
