"""The outbound sender: sends the queued messages of `services/outbound.py` when they can
go, each session on its own task (in order, stopping when one must wait), and fails
those not sent before their deadline. A send with `typing_ms` first shows the session
typing in its chat when its turn comes; the message then goes after that presence. In the
cluster topology a session's queue will be drained by the web process holding that
session's lease."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from functools import partial

from zapgate.config import Settings
from zapgate.domain.models import MessageStatus, Session
from zapgate.pipeline.base import PollingLoop
from zapgate.registry import Registry
from zapgate.services.outbound import OutboundQueue

logger = logging.getLogger(__name__)
# A message claimed by a sender that then died is retried after this long.
STALE_CLAIM = timedelta(seconds=60)


class OutboundSender(PollingLoop):
    name = "outbound"
    failure = "outbound queue scan failed"

    def __init__(self, settings: Settings, registry: Registry, queue: OutboundQueue) -> None:
        super().__init__(settings.poll_interval)
        self.registry = registry
        self.queue = queue
        self._running: set[int] = set()
        # Presences being shown before a typed send, by message id.
        self._typing: dict[str, asyncio.Task[None]] = {}

    async def tick(self) -> None:
        now = datetime.now(UTC)
        for typing in self.queue.typing_due(now):
            task = self.tasks.create(
                self.queue.show_typing(typing),
                name=f"session:{typing.session.client_id}:typing",
            )
            self._typing[typing.message_id] = task
            task.add_done_callback(partial(self._typed, typing.message_id))
        for message in await self.registry.messages.expired(now):
            logger.warning("message %s: not sent before its deadline", message.id)
            await self.registry.messages.update_status(
                message.session_id, message.id, MessageStatus.FAILED, "deadline_exceeded"
            )
        due = await self.registry.messages.due_outbound(now, stale_before=now - STALE_CLAIM)
        by_session: dict[int, Session] = {}
        for _, session in due:
            by_session.setdefault(session.id, session)
        for sid, session in by_session.items():
            if sid not in self._running:
                self._running.add(sid)
                self.tasks.create(
                    self._drain(session), name=f"session:{session.client_id}:outbound"
                )

    async def _drain(self, session: Session) -> None:
        """Send this session's due messages in order; stop when one must wait."""
        try:
            now = datetime.now(UTC)
            stale = now - STALE_CLAIM
            due = await self.registry.messages.due_outbound(
                now, stale_before=stale, session_id=session.id
            )
            for message, s in due:
                if not await self.registry.messages.claim(message.pk, stale_before=stale):
                    continue
                showing = self._typing.get(message.id)
                if showing is not None:
                    await asyncio.wait([showing])  # the presence reaches the chat first
                result = await self.queue.send(s, message)
                if result.status is MessageStatus.QUEUED:
                    return
        finally:
            self._running.discard(session.id)

    def _typed(self, message_id: str, _: asyncio.Task[None]) -> None:
        self._typing.pop(message_id, None)
