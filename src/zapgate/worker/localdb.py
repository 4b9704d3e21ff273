"""The worker's own SQLite files (its journal, its list of sessions): files nothing else
opens (the data dir is locked to the worker), so they are used synchronously on the
event loop, in autocommit (every statement its own transaction, committed when it
returns): tens of microseconds a statement, less than any hand-off to a thread."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_local(path: Path, *schemas: str) -> sqlite3.Connection:
    """Open (creating it and its tables when missing) one of the worker's files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for schema in schemas:
            db.execute(schema)
    except BaseException:
        db.close()
        raise
    return db
