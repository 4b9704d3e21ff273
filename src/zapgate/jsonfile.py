"""Small JSON files written atomically and readable only by their owner: the simulated
network's linked devices, a sim session's credentials and a whatsmeow session's device
all hold secrets or identities."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_json(path: Path, data: Any, *, mode: int = 0o600) -> None:
    """Write `data` to `path` so a crash leaves either the old file or the new one, never
    half of one (write a sibling temp file, fsync, rename over)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """The parsed content of `path`; raises OSError / ValueError like open() and json do."""
    return json.loads(path.read_text(encoding="utf-8"))
