"""SQLite's write lock held by another process: the group commit waits for it on a
thread (up to busy_timeout, like every other writer) and the event loop keeps running;
and sessions looked up by name come from memory for a second at most."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.contract.registry.helpers import ROUTE
from zapgate.domain.state import SessionState
from zapgate.registry import Registry, sessions


async def test_a_batch_waits_for_another_processs_write_lock_off_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "zapgate.db"
    registry = await Registry.open(f"sqlite+aiosqlite:///{path}")
    try:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
        create = asyncio.ensure_future(registry.cursors.set("worker-1", 7))  # a batched write
        ticks = 0
        for _ in range(20):  # the loop runs while the write waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert not create.done() and ticks == 20
        other.execute("COMMIT")
        other.close()
        await asyncio.wait_for(create, 10)
        assert await registry.cursors.get("worker-1") == 7
    finally:
        await registry.close()


async def test_a_session_change_through_this_process_is_seen_at_once(tmp_path: Path) -> None:
    registry = await Registry.open(f"sqlite+aiosqlite:///{tmp_path / 'z.db'}")
    try:
        user = await registry.users.create("a@example.com")
        s, _ = await registry.sessions.get_or_create(user.id, "main", engine="sim", route=ROUTE)
        assert (await registry.sessions.get(user.id, "main")).state is SessionState.STOPPED  # type: ignore[union-attr]
        await registry.sessions.update_state(s.id, SessionState.CONNECTED, None)
        got = await registry.sessions.get(user.id, "main")
        assert got is not None and got.state is SessionState.CONNECTED
        await registry.sessions.set_send_rate(s.id, "5/3s")
        got = await registry.sessions.get(user.id, "main")
        assert got is not None and got.send_rate == "5/3s"
        await registry.sessions.delete(s.id)
        assert await registry.sessions.get(user.id, "main") is None
    finally:
        await registry.close()


async def test_another_processs_change_is_seen_within_the_cache_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "CACHE_SECONDS", 0.2)
    url = f"sqlite+aiosqlite:///{tmp_path / 'z.db'}"
    web, cli = await Registry.open(url), await Registry.open(url)
    try:
        user = await web.users.create("a@example.com")
        s, _ = await web.sessions.get_or_create(user.id, "main", engine="sim", route=ROUTE)
        assert await web.sessions.get(user.id, "main") is not None  # cached now
        await cli.sessions.delete(s.id)  # "another process"
        assert await web.sessions.get(user.id, "main") is not None  # still the cached one
        await asyncio.sleep(0.25)
        assert await web.sessions.get(user.id, "main") is None
    finally:
        await web.close()
        await cli.close()
