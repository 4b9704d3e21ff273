"""The outbound queue: every send is written first (so none is ever silently dropped),
sent at once when the session is CONNECTED and the number's rate allows, else queued
(202) and sent by a per-session sender task when it can go, or failed with a reason
after the deadline. Message ids are fixed when the send is accepted and the worker
de-duplicates on them, so a retry after a crash never sends twice."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from zapgate.aio import BackgroundTasks, Wakeup
from zapgate.config import Settings
from zapgate.domain.ids import new_message_id
from zapgate.domain.models import MediaMeta, Message, MessageStatus, Session
from zapgate.domain.state import SessionState
from zapgate.errors import GatewayError, MediaMissing, WrongState
from zapgate.events.ratelimit import SendScheduler, parse_rate
from zapgate.i18n import N_
from zapgate.registry import Registry
from zapgate.services.media import MediaFile, MediaStore
from zapgate.services.workers import WorkerPool

logger = logging.getLogger(__name__)
# A message claimed by a sender that then died is retried after this long.
STALE_CLAIM = timedelta(seconds=60)
JANITOR_EVERY = 3600.0


def _ref(message: Message) -> str | None:
    return message.media.ref if message.media is not None else None


def _retry_later(exc: Exception) -> bool:
    """Failures that mean "not now" rather than "never"."""
    return isinstance(exc, WrongState) or (isinstance(exc, GatewayError) and exc.is_transient)


class OutboundQueue:
    def __init__(self, settings: Settings, registry: Registry, pool: WorkerPool) -> None:
        self.settings = settings
        self.registry = registry
        self.pool = pool
        self.scheduler = SendScheduler()
        self._tasks = BackgroundTasks()
        self._running: set[int] = set()
        self._wake = Wakeup()
        self._last_janitor = 0.0
        self.media = MediaStore(settings.data_dir)

    def start(self) -> None:
        self._tasks.create(self._loop(), name="outbound:scanner")

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        await self._tasks.close()

    # -- accepting a send ------------------------------------------------------------------
    async def submit(
        self,
        session: Session,
        *,
        to: str,
        text: str | None,
        idempotency_key: str | None,
        media: MediaFile | None = None,
    ) -> tuple[Message, bool]:
        """Write the send (and its media bytes, first), then send it now or queue it.
        `text` is a media message's caption."""
        now = datetime.now(UTC)
        message_id = new_message_id()
        meta: MediaMeta | None = None
        if media is not None:
            ref = self.media.ref_for(session.client_id, message_id)
            await self.media.save(ref, media.data)
            meta = MediaMeta(
                type=media.kind,
                mime=media.mime,
                size=len(media.data),
                filename=media.filename,
                ref=ref,
            )
        rate = parse_rate(session.send_rate or self.settings.send_rate)
        at = self.scheduler.reserve(session.id, rate, now)
        immediate = session.state is SessionState.CONNECTED and at <= now
        message, created = await self.registry.add_message(
            session.id,
            id=message_id,
            direction="out",
            chat=to,
            text=text,
            status=MessageStatus.PENDING if immediate else MessageStatus.QUEUED,
            idempotency_key=idempotency_key,
            scheduled_at=at,
            deadline_at=now + timedelta(seconds=self.settings.queue_deadline),
            media=meta,
        )
        if not created:
            if meta is not None and meta.ref is not None and meta.ref != _ref(message):
                await self.media.delete(meta.ref)  # an Idempotency-Key race was lost
            return message, False
        if not immediate:
            self.wake()
            return message, True
        return await self._send(session, message), True

    async def _send(self, session: Session, message: Message) -> Message:
        """Send a claimed (`pending`) message; returns it with its new status."""
        try:
            await self._deliver(session, message)
        except Exception as exc:
            reason = getattr(exc, "errcode", type(exc).__name__)
            if _retry_later(exc):
                logger.info(
                    "session %s: message %s queued again (%s)", session.label, message.id, reason
                )
                released = await self.registry.release_message(session.id, message.id, reason)
                return released or message
            logger.warning("session %s: message %s failed: %s", session.label, message.id, reason)
            failed = await self.registry.update_message_status(
                session.id, message.id, MessageStatus.FAILED, str(reason)
            )
            return failed or message
        sent = await self.registry.update_message_status(session.id, message.id, MessageStatus.SENT)
        return sent or message

    async def _deliver(self, session: Session, message: Message) -> None:
        media = message.media
        if media is None:
            await self.pool.call(
                session.route,
                session.label,
                lambda w: w.send_text(
                    session.client_id, message.id, message.chat, message.text or ""
                ),
            )
            return
        if media.ref is None:
            raise MediaMissing(N_("message {id} has no stored media"), id=message.id)
        try:
            data = await self.media.read(media.ref)
        except FileNotFoundError:
            raise MediaMissing(N_("the media of message {id} is gone"), id=message.id) from None
        await self.pool.call(
            session.route,
            session.label,
            lambda w: w.send_media(
                session.client_id,
                message.id,
                message.chat,
                kind=media.type,
                data=data,
                mime=media.mime,
                filename=media.filename,
                caption=message.text,
            ),
        )

    # -- the background sender -------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:
                logger.exception("outbound queue scan failed")
            await self._wake.wait(self.settings.poll_interval)

    async def _tick(self) -> None:
        now = datetime.now(UTC)
        for message in await self.registry.expired_outbound(now):
            logger.warning("message %s: not sent before its deadline", message.id)
            await self.registry.update_message_status(
                message.session_id, message.id, MessageStatus.FAILED, "deadline_exceeded"
            )
        due = await self.registry.due_outbound(now, stale_before=now - STALE_CLAIM)
        by_session: dict[int, Session] = {}
        for _, session in due:
            by_session.setdefault(session.id, session)
        for sid, session in by_session.items():
            if sid not in self._running:
                self._running.add(sid)
                self._tasks.create(
                    self._drain(session), name=f"session:{session.client_id}:outbound"
                )
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._last_janitor > JANITOR_EVERY:
            self._last_janitor = loop_now
            await self._janitor(now)

    async def _drain(self, session: Session) -> None:
        """Send this session's due messages in order; stop when one must wait."""
        try:
            now = datetime.now(UTC)
            stale = now - STALE_CLAIM
            due = await self.registry.due_outbound(now, stale_before=stale, session_id=session.id)
            for message, s in due:
                if not await self.registry.claim_message(message.pk, stale_before=stale):
                    continue
                result = await self._send(s, message)
                if result.status is MessageStatus.QUEUED:
                    return
        finally:
            self._running.discard(session.id)

    async def _janitor(self, now: datetime) -> None:
        messages_before = now - timedelta(days=self.settings.message_retention_days)
        events_before = (
            now - timedelta(seconds=self.settings.webhook_retry_period) - timedelta(days=1)
        )
        m, e = await self.registry.purge(
            messages_before=messages_before, events_before=events_before
        )
        f = await self.media.purge(self.settings.message_retention_days)
        if m or e or f:
            logger.info(
                "retention: purged %d message(s), %d event(s) and %d media file(s)", m, e, f
            )
