"""The registry's life: open, migrate (also racing processes), close, ping; the
migrations match the models."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from zapgate.registry import Registry, migrator
from zapgate.registry.tables import metadata


async def test_opened_registry_is_at_head(registry: Registry, db_url: str) -> None:
    versions = Path(migrator.__file__).parent / "migrations" / "versions"
    # Migrations sort by file name (0004_media, 0005_auth_limits, 0006_...); the
    # newest file's `revision` is the head.
    newest = max(versions.glob("[0-9]*.py"), key=lambda p: p.name)
    match = re.search(r'^revision: str = "([^"]+)"', newest.read_text(), re.MULTILINE)
    assert match is not None, newest
    assert registry.head_revision() == match.group(1)
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
