"""Follows each worker's event journal with a cursor kept in the registry and applies the
events to it: session states, inbound messages, delivery acks. At-least-once: the cursor
is saved after the events are applied, and applying an event twice changes nothing."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime

from zapgate.aio import BackgroundTasks
from zapgate.domain.models import MediaMeta, MessageStatus, Route
from zapgate.domain.state import SessionState
from zapgate.errors import GatewayError
from zapgate.registry import Registry
from zapgate.services.workers import WorkerPool
from zapgate.worker.schemas import JournalEntry

logger = logging.getLogger(__name__)


class JournalPuller:
    def __init__(
        self,
        registry: Registry,
        pool: WorkerPool,
        *,
        wait: float = 20.0,
        on_applied: Callable[[bool], None] | None = None,
    ) -> None:
        self.registry = registry
        # Told after each batch (True when a session became CONNECTED), so the webhook
        # dispatcher and the outbound queue act at once instead of at their next tick.
        self._on_applied = on_applied or (lambda _connected: None)
        self.pool = pool
        self.wait = wait
        self._tasks = BackgroundTasks()
        self._following: set[str] = set()
        self._session_ids: dict[str, int] = {}

    def follow(self, route: Route) -> None:
        key = route.worker_id
        if key in self._following:
            return
        self._following.add(key)
        self._tasks.create(self._run(route), name=f"journal:{key}:puller")

    async def close(self) -> None:
        await self._tasks.close()
        self._following.clear()

    async def _run(self, route: Route) -> None:
        key = route.worker_id
        cursor = await self.registry.cursors.get(key)
        delay = 0.5
        while True:
            try:
                page = await self.pool.client(route).events(cursor, limit=200, wait=self.wait)
            except GatewayError as exc:
                logger.debug("journal %s: %s; retrying in %.1fs", key, exc.error, delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 15.0)
                continue
            delay = 0.5
            connected = False
            for entry in page.items:
                try:
                    await self.apply(entry)
                except Exception:
                    logger.exception("journal %s: applying event %s failed", key, entry.seq)
                connected |= entry.type == "state" and entry.data.get("state") == "CONNECTED"
            if page.items:
                self._on_applied(connected)
            if page.next != cursor:
                cursor = page.next
                await self.registry.cursors.set(key, cursor)

    async def _session_id(self, client_id: str) -> int | None:
        sid = self._session_ids.get(client_id)
        if sid is None:
            session = await self.registry.sessions.get_by_client_id(client_id)
            if session is None:
                return None
            sid = self._session_ids[client_id] = session.id
        return sid

    async def apply(self, entry: JournalEntry) -> None:
        sid = await self._session_id(entry.client_id)
        if sid is None:
            return  # a session deleted since, or hosted for another web tier
        data = entry.data
        if entry.type == "state":
            state = SessionState(data["state"])
            if (
                await self.registry.sessions.update_state(
                    sid, state, data.get("reason"), data.get("phone")
                )
                is None
            ):
                self._session_ids.pop(entry.client_id, None)
            if state is SessionState.LOGGED_OUT:
                await self.registry.sessions.clear_phone(sid)
        elif entry.type == "message":
            raw_media = data.get("media")
            media = None
            if isinstance(raw_media, dict):
                media = MediaMeta(
                    type=str(raw_media["type"]),
                    mime=str(raw_media.get("mime") or "application/octet-stream"),
                    size=int(raw_media.get("size") or 0),
                    filename=raw_media.get("filename"),
                    ref=raw_media.get("ref"),
                )
            await self.registry.messages.add(
                sid,
                id=str(data["id"]),
                direction="in",
                chat=str(data["chat"]),
                text=data.get("text"),
                status=MessageStatus.RECEIVED,
                created_at=datetime.fromisoformat(data["timestamp"]),
                media=media,
            )
        elif entry.type == "qr":
            await self.registry.outbox.record_event(
                sid, "session.qr", {"qr": data["qr"], "expires_at": data.get("expires_at")}
            )
        elif entry.type == "ack":
            await self.registry.messages.update_status(
                sid, str(data["id"]), MessageStatus(data["status"])
            )
