"""registry.sessions: get-or-create (race-safe), client ids, routes, states, phones,
deletion."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.contract.registry.helpers import EMBEDDED, ROUTE, add_message, fetch_rows, is_utc
from zapgate.domain.ids import is_valid_client_id
from zapgate.domain.models import Route
from zapgate.domain.state import SessionState
from zapgate.errors import Conflict, NotFound, SessionNotFound, ValidationFailed
from zapgate.registry import Registry


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
    assert is_utc(session.created_at) and is_utc(session.updated_at)

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
        await add_message(registry, session.id, f"M{i}")
    await add_message(registry, keep.id, "K0")
    await registry.sessions.delete(session.id)
    assert await registry.sessions.get_by_id(session.id) is None
    assert await registry.sessions.get(user.id, "default") is None
    assert await registry.messages.get(session.id, "M0") is None
    rows = await fetch_rows(raw, "SELECT session_id FROM messages")
    assert rows == [(keep.id,)]
    await registry.sessions.delete(session.id)  # deleting twice is harmless
    # The name is free again, with a fresh client id.
    again, created = await registry.sessions.get_or_create(
        user.id, "default", engine="sim", route=ROUTE
    )
    assert created and again.client_id != session.client_id
