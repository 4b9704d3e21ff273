"""The worker's list of sessions it hosts (client id, session dir, engine), kept on disk so
a restarted worker knows what to restore without asking the web tier.

A SQLite file in the worker's data dir, one row per session: adding or removing a
session writes that row alone (the JSON file it replaces was rewritten whole on every
change, which made hosting 10k sessions cost the square of it: 690 s). The file is one
of the worker's own (`worker/localdb.py`). A `worker-sessions.json` left by an earlier
version is imported once, then renamed `worker-sessions.json.imported`."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from zapgate.worker.localdb import open_local

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    client_id TEXT PRIMARY KEY,
    session_dir TEXT NOT NULL,
    engine TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    client_id: str
    session_dir: str
    engine: str


class Manifest:
    def __init__(self, path: Path, *, legacy_json: Path | None = None) -> None:
        self.path = path
        self.legacy_json = legacy_json
        self._db: sqlite3.Connection | None = None
        self._entries: dict[str, ManifestEntry] = {}

    def load(self) -> None:
        db = open_local(self.path, _SCHEMA)
        try:
            self._import_legacy(db)
            rows = db.execute("SELECT client_id, session_dir, engine FROM sessions").fetchall()
        except BaseException:
            db.close()
            raise
        self._db = db
        self._entries = {row[0]: ManifestEntry(*row) for row in rows}

    def _import_legacy(self, db: sqlite3.Connection) -> None:
        legacy = self.legacy_json
        if legacy is None or not legacy.exists():
            return
        raw = json.loads(legacy.read_text(encoding="utf-8"))
        entries = [ManifestEntry(**v) for v in raw.values()]
        with db:  # one transaction: all of them or none
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR REPLACE INTO sessions (client_id, session_dir, engine) VALUES (?, ?, ?)",
                [(e.client_id, e.session_dir, e.engine) for e in entries],
            )
        os.replace(legacy, legacy.with_name(legacy.name + ".imported"))
        logger.info("worker: imported %d session(s) from %s", len(entries), legacy.name)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the manifest is not loaded")
        return self._db

    def get(self, client_id: str) -> ManifestEntry | None:
        return self._entries.get(client_id)

    def put(self, entry: ManifestEntry) -> None:
        if self._entries.get(entry.client_id) != entry:
            self.db.execute(
                "INSERT OR REPLACE INTO sessions (client_id, session_dir, engine) VALUES (?, ?, ?)",
                (entry.client_id, entry.session_dir, entry.engine),
            )
            self._entries[entry.client_id] = entry

    def remove(self, client_id: str) -> None:
        if self._entries.pop(client_id, None) is not None:
            self.db.execute("DELETE FROM sessions WHERE client_id = ?", (client_id,))

    def entries(self) -> list[ManifestEntry]:
        return list(self._entries.values())
