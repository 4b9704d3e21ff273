"""`zapgate import-legacy`: reads the old Flask app's `data/user_instances.json` (an object
keyed by user id; each value holds at least `port`, maybe `client_id` and `session_dir`)
and records one `default` session per user, exactly where the old app said it lived.
The topology then migrates those routes at start-up (the seed incident's 5003 -> 5001)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zapgate.config import Settings
from zapgate.domain.ids import is_valid_client_id
from zapgate.domain.models import Route
from zapgate.errors import ValidationFailed
from zapgate.i18n import N_
from zapgate.registry import Registry
from zapgate.topology.placement import worker_id_for

logger = logging.getLogger(__name__)
LEGACY_SESSION_NAME = "default"


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"imported {x}" for x in self.imported]
        out += [f"note: {x}" for x in self.notes]
        out += [f"skipped {x}" for x in self.skipped]
        out.append(f"{len(self.imported)} imported, {len(self.skipped)} skipped")
        return out


def _load(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ValidationFailed(
            N_("{path} does not exist."),
            hint=N_("Pass the path of data/user_instances.json."),
            path=str(path),
        ) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(
            N_("{path} is not valid JSON: {detail}"), path=str(path), detail=str(exc)
        ) from exc
    if not isinstance(raw, dict):
        raise ValidationFailed(N_("{path} must hold an object keyed by user id."), path=str(path))
    return raw


async def import_file(settings: Settings, path: Path) -> ImportReport:
    records = _load(path)
    report = ImportReport()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = await Registry.open(settings.resolved_database_url)
    try:
        for key, value in records.items():
            await _import_one(registry, settings, key, value, report)
    finally:
        await registry.close()
    return report


async def _import_one(
    registry: Registry, settings: Settings, key: str, value: Any, report: ImportReport
) -> None:
    if not key.isdigit() or int(key) < 1:
        report.skipped.append(f"entry {key[:40]!r}: the key is not a numeric user id")
        return
    user_id = int(key)
    if not isinstance(value, dict):
        report.skipped.append(f"user {user_id}: the record is not an object")
        return
    port = value.get("port")
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)  # the old app sometimes wrote ports as strings
    if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
        report.skipped.append(f"user {user_id}: port {port!r} is not a TCP port")
        return
    if await registry.users.get(user_id) is None:
        email = f"legacy-user-{user_id}@zapgate.invalid"
        await registry.users.create(email, None, user_id=user_id)
        report.notes.append(f"user {user_id}: created {email} (no password; set one to sign in)")
    client_id = value.get("client_id")
    existing = await registry.sessions.get(user_id, LEGACY_SESSION_NAME)
    if existing is not None:
        # Imported before (or created since): the stored session wins; say what of the
        # legacy record was not applied instead of pretending it was.
        if client_id is not None and client_id != existing.client_id:
            report.notes.append(
                f"user {user_id}: legacy client_id {str(client_id)[:40]!r} not applied; "
                f"the session keeps {existing.client_id!r}"
            )
        if port is not None and port != existing.port:
            report.notes.append(
                f"user {user_id}: legacy port {port} not applied; the session is on port "
                f"{existing.port} (the topology decides where it lives)"
            )
        report.imported.append(
            f"user {user_id}: kept the existing session {existing.label} "
            f"({existing.client_id}) on port {existing.port}"
        )
        return
    if client_id is not None and not (isinstance(client_id, str) and is_valid_client_id(client_id)):
        report.notes.append(
            f"user {user_id}: client_id {str(client_id)[:40]!r} is unsafe; a new one was derived"
        )
        client_id = None
    elif client_id is not None and await registry.sessions.get_by_client_id(client_id):
        report.notes.append(
            f"user {user_id}: client_id {client_id!r} is already in use; a new one was derived"
        )
        client_id = None
    if "session_dir" in value:
        report.notes.append(
            f"user {user_id}: session_dir is derived from the client id; the "
            "legacy value was not used"
        )
    if port is None:
        route = Route(worker_id="legacy", worker_url=None, port=None)
        report.notes.append(f"user {user_id}: no port recorded; the topology will place it")
    else:
        url = f"http://{settings.worker_host}:{port}"
        route = Route(worker_id=worker_id_for(url), worker_url=url, port=port)
    session, created = await registry.sessions.get_or_create(
        user_id, LEGACY_SESSION_NAME, engine=settings.engine, route=route, client_id=client_id
    )
    what = "session" if created else "kept the existing session"
    report.imported.append(
        f"user {user_id}: {what} {session.label} ({session.client_id}) on port {session.port}"
    )
    logger.info("legacy import: user %s -> %s port %s", user_id, session.client_id, session.port)
