"""The worker's list of sessions it hosts (client id, session dir, engine), kept in a JSON
file so a restarted worker knows what to restore without asking the web tier."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    client_id: str
    session_dir: str
    engine: str


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, ManifestEntry] = {}

    def load(self) -> None:
        if not self.path.exists():
            return
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        self._entries = {k: ManifestEntry(**v) for k, v in raw.items()}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({k: asdict(v) for k, v in self._entries.items()}, indent=1),
            encoding="utf-8",
        )
        os.replace(tmp, self.path)

    def get(self, client_id: str) -> ManifestEntry | None:
        return self._entries.get(client_id)

    def put(self, entry: ManifestEntry) -> None:
        if self._entries.get(entry.client_id) != entry:
            self._entries[entry.client_id] = entry
            self._save()

    def remove(self, client_id: str) -> None:
        if self._entries.pop(client_id, None) is not None:
            self._save()

    def entries(self) -> list[ManifestEntry]:
        return list(self._entries.values())
