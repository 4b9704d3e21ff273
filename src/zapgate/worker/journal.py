"""The worker's append-only event journal (SQLite in the worker's data dir).

The web tier reads it with a cursor (`seq`), so events survive either side restarting
and are delivered at least once; readers long-poll with `wait`.

The journal is one of the worker's own files (`worker/localdb.py`): statements run
synchronously on the event loop, each autocommitted (an append per event, several per
message sent)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from zapgate.worker.localdb import open_local
from zapgate.worker.schemas import JournalEntry, JournalPage

logger = logging.getLogger(__name__)
# Longer than the web tier's queue deadline, so any retry still finds its first send.
SENT_KEEP = timedelta(days=3)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    at TEXT NOT NULL
)
"""
# Message ids already handed to an engine: a send retried after a crash of the web tier
# (same id) is answered from here instead of going out twice.
_SENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent (
    client_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    wa_id TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (client_id, message_id)
)
"""


class Journal:
    def __init__(self, path: Path, *, keep: int = 100_000) -> None:
        self.path = path
        self.keep = keep
        self._db: sqlite3.Connection | None = None
        self._changed = asyncio.Condition()
        self._last_seq = 0
        self._appends = 0

    @property
    def last_seq(self) -> int:
        return self._last_seq

    async def open(self) -> None:
        db = open_local(self.path, _SCHEMA, _SENT_SCHEMA)
        try:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        except BaseException:
            db.close()
            raise
        self._db = db
        self._last_seq = int(row[0]) if row else 0

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("journal is not open")
        return self._db

    async def append(self, client_id: str, type_: str, data: dict[str, Any]) -> int:
        at = datetime.now(UTC).isoformat()
        cur = self.db.execute(
            "INSERT INTO journal (client_id, type, data, at) VALUES (?, ?, ?, ?)",
            (client_id, type_, json.dumps(data, default=str), at),
        )
        seq = int(cur.lastrowid or 0)
        self._last_seq = max(self._last_seq, seq)
        self._appends += 1
        if self._appends % 1000 == 0:
            self._trim()
        async with self._changed:
            self._changed.notify_all()
        return seq

    def _trim(self) -> None:
        self.db.execute("DELETE FROM journal WHERE seq <= ?", (self._last_seq - self.keep,))
        cutoff = (datetime.now(UTC) - SENT_KEEP).isoformat()
        self.db.execute("DELETE FROM sent WHERE at < ?", (cutoff,))

    async def sent_id(self, client_id: str, message_id: str) -> str | None:
        row = self.db.execute(
            "SELECT wa_id FROM sent WHERE client_id = ? AND message_id = ?",
            (client_id, message_id),
        ).fetchone()
        return str(row[0]) if row else None

    async def mark_sent(self, client_id: str, message_id: str, wa_id: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO sent (client_id, message_id, wa_id, at) VALUES (?, ?, ?, ?)",
            (client_id, message_id, wa_id, datetime.now(UTC).isoformat()),
        )

    async def read(self, after: int, limit: int = 100, wait: float = 0.0) -> JournalPage:
        """Entries with seq > after (at most `limit`), waiting up to `wait` seconds for one."""
        if wait > 0 and self._last_seq <= after:
            async with self._changed:
                # Not asyncio.wait_for: see `aio.Wakeup.wait` (a cancel must never be lost).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._changed.wait_for(lambda: self._last_seq > after)
        rows = self.db.execute(
            "SELECT seq, client_id, type, data, at FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        ).fetchall()
        items = [
            JournalEntry(
                seq=row[0],
                client_id=row[1],
                type=row[2],
                data=json.loads(row[3]),
                at=datetime.fromisoformat(row[4]),
            )
            for row in rows
        ]
        # A reader whose cursor is ahead of us (journal recreated) starts over from 0.
        nxt = items[-1].seq if items else (after if after <= self._last_seq else 0)
        return JournalPage(items=items, next=nxt)
