"""Start-up that undoes itself: whatever fails while the web tier builds or starts, it
leaves no task, no thread and no open database file behind."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from zapgate.config import Settings, Topology
from zapgate.pipeline.puller import JournalPuller
from zapgate.registry import migrator
from zapgate.topology.migration import RouteMigrator
from zapgate.web.app import create_app
from zapgate.web.context import AppContext

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc"
)


class Boom(Exception):
    pass


def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, engine="sim", database_url=None, simnet_url=None)


def open_files(root: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed since listed
        if target.startswith(str(root.resolve())):
            found.append(target)
    return found


async def assert_nothing_left(root: Path, threads_before: set[threading.Thread]) -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}
    # A closed aiosqlite connection's thread ends just after the close returns.
    async with asyncio.timeout(5):
        while set(threading.enumerate()) - threads_before:
            await asyncio.sleep(0.01)
    assert open_files(root) == []
    # Nobody holds the registry's file: an exclusive lock is granted at once.
    conn = sqlite3.connect(root / "zapgate.db", timeout=0)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.rollback()
    finally:
        conn.close()


async def test_a_failing_schema_migration_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(_engine: Any) -> None:
        raise Boom("migration failed")

    monkeypatch.setattr(migrator, "upgrade", fail)
    threads = set(threading.enumerate())
    with pytest.raises(Boom):
        await AppContext.build(settings(tmp_path), Topology.EMBEDDED)
    await assert_nothing_left(tmp_path, threads)


async def test_a_worker_journal_that_is_not_a_database_closes_the_registry(
    tmp_path: Path,
) -> None:
    # The registry opens and migrates; the embedded worker's journal then fails to open.
    (tmp_path / "worker-journal.db").write_bytes(b"this is not a database" * 100)
    threads = set(threading.enumerate())
    with pytest.raises(sqlite3.DatabaseError):
        await AppContext.build(settings(tmp_path), Topology.EMBEDDED)
    assert (tmp_path / "zapgate.db").exists()  # the registry was open
    await assert_nothing_left(tmp_path, threads)


def _fail_migrate_all(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(_self: RouteMigrator) -> None:
        raise Boom("route migration failed")

    monkeypatch.setattr(RouteMigrator, "migrate_all", fail)


def _fail_last_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # By then the other loops and the embedded worker's restore are running.
    def fail(_self: JournalPuller) -> None:
        raise Boom("puller failed to start")

    monkeypatch.setattr(JournalPuller, "start", fail)


@pytest.mark.parametrize("failing", [_fail_migrate_all, _fail_last_loop])
async def test_a_failure_at_start_closes_what_was_built(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failing: Callable[[pytest.MonkeyPatch], None],
) -> None:
    failing(monkeypatch)
    app: FastAPI = create_app(settings(tmp_path), Topology.EMBEDDED)
    threads = set(threading.enumerate())
    with pytest.raises(Boom):
        async with app.router.lifespan_context(app):
            pass
    await assert_nothing_left(tmp_path, threads)


async def test_build_runs_nothing_until_start(tmp_path: Path) -> None:
    ctx = await AppContext.build(settings(tmp_path), Topology.EMBEDDED)
    try:
        assert asyncio.all_tasks() == {asyncio.current_task()}
        await ctx.start()
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert {"outbound:scanner", "webhooks:scanner", "janitor:scanner"} <= names
        assert any(n.startswith("journal:") for n in names)
    finally:
        await ctx.close()
    assert asyncio.all_tasks() == {asyncio.current_task()}
