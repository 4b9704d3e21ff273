"""whatsmeow's auth-state store, seen from the worker: is this session's device in it, and
forgetting it. The store is SQLite in the session dir, or PostgreSQL shared by every
session (each session then names its device by JID, kept in the session's device file).

Why the worker looks: whatsmeow deletes the device row itself when WhatsApp logs the
device out; a device file left behind makes `GetDevice` return nil, which neonize passes
to `NewClient`: a Go nil dereference that kills the process on every start. Nothing here
imports neonize; SQLite reads run off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

CHECK_TIMEOUT = 5.0


class StoreUnreachable(Exception):
    """The PostgreSQL store could not be asked."""


def _matches(jid: str, user: str) -> bool:
    # whatsmeow stores JID.String(): "user@server", "user:device@server" or
    # "user.agent:device@server".
    head = jid.split("@", 1)[0]
    return head.split(":", 1)[0].split(".", 1)[0] == user


def _sqlite_devices(path: Path) -> list[str]:
    if not path.is_file():
        return []
    try:
        uri = f"file:{path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as db:
            return [str(r[0]) for r in db.execute("SELECT jid FROM whatsmeow_device")]
    except sqlite3.Error:
        return []  # no schema yet: never paired


async def sqlite_devices(path: Path) -> list[str]:
    return await asyncio.to_thread(_sqlite_devices, path)


async def _pg(url: str, query: str, *args: Any) -> list[Any]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            conn = await asyncpg.connect(url)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()
    except asyncpg.UndefinedTableError:
        return []  # whatsmeow has not created its schema yet: nothing was ever paired
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise StoreUnreachable(str(exc) or type(exc).__name__) from exc


async def has_device(store: str | None, sqlite_path: Path, user: str | None) -> bool:
    """Whether the store holds a device (for a shared store: the one of phone `user`)."""
    if store is None:
        devices = await sqlite_devices(sqlite_path)
        return bool(devices) if user is None else any(_matches(j, user) for j in devices)
    if user is None:
        return False
    rows = await _pg(store, "SELECT jid FROM whatsmeow_device WHERE jid LIKE $1", f"{user}%")
    return any(_matches(str(r["jid"]), user) for r in rows)


def _unlink_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def forget(store: str | None, sqlite_path: Path, user: str | None) -> None:
    """Remove the device from the store (the SQLite files, or its PostgreSQL row)."""
    if store is None:
        await asyncio.to_thread(_unlink_sqlite, sqlite_path)
        return
    if user is not None:
        with contextlib.suppress(StoreUnreachable):
            rows = await _pg(
                store, "SELECT jid FROM whatsmeow_device WHERE jid LIKE $1", f"{user}%"
            )
            for row in rows:
                if _matches(str(row["jid"]), user):
                    await _pg(store, "DELETE FROM whatsmeow_device WHERE jid = $1", row["jid"])
