"""The registry contract: one suite, run against every backend (SQLite and PostgreSQL).

PostgreSQL tests use a throw-away database per test on the server named by
ZAPGATE_TEST_PG_URL (an admin URL; default: the local server, user postgres). They fail
when the server is unreachable, unless ZAPGATE_TEST_SKIP_PG=1.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from zapgate.registry import Registry

PG_ADMIN_URL = os.environ.get(
    "ZAPGATE_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


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
