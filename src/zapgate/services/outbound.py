"""Accepting a send: every send is written first (so none is ever silently dropped),
sent at once when the session is CONNECTED and the number's rate allows, else queued
(202) for the outbound sender (`pipeline/outbound.py`) to send when it can go, or fail
with a reason after the deadline. Message ids are fixed when the send is accepted and the
worker de-duplicates on them, so a retry after a crash never sends twice."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from zapgate.config import Settings
from zapgate.domain.content import NO_EXTRAS, Extras
from zapgate.domain.ids import new_message_id
from zapgate.domain.models import MediaMeta, Message, MessageStatus, Session
from zapgate.domain.ratelimit import SendScheduler, parse_rate
from zapgate.domain.state import SessionState
from zapgate.errors import GatewayError, MediaMissing, WrongState
from zapgate.i18n import N_
from zapgate.registry import Registry
from zapgate.services.media import MediaFile, MediaStore
from zapgate.topology.pool import WorkerPool

logger = logging.getLogger(__name__)


def _ref(message: Message) -> str | None:
    return message.media.ref if message.media is not None else None


@dataclass(frozen=True, slots=True)
class Typing:
    """What a send with `typing_ms` shows first: `state` (typing, or recording for a voice
    note) in the message's chat, from `at` until the message goes."""

    session: Session
    message_id: str
    chat: str
    state: str
    at: datetime


def _retry_later(exc: Exception) -> bool:
    """Failures that mean "not now" rather than "never"."""
    return isinstance(exc, WrongState) or (isinstance(exc, GatewayError) and exc.is_transient)


class OutboundQueue:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        pool: WorkerPool,
        *,
        on_queued: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.pool = pool
        self.scheduler = SendScheduler()
        # Told when a send is queued, so the outbound sender looks at once.
        self._on_queued = on_queued
        self.media = MediaStore(settings.data_dir)
        # Per session, when its last send with `typing_ms` goes: later sends wait for it,
        # so they keep their order. In memory, like the scheduler: what is queued already
        # keeps its persisted scheduled_at.
        self._not_before: dict[int, datetime] = {}
        # Per message id, the presence to show before it goes (for the outbound sender).
        self._typing: dict[str, Typing] = {}

    async def submit(
        self,
        session: Session,
        *,
        to: str,
        text: str | None,
        idempotency_key: str | None,
        idempotency_hash: str | None = None,
        media: MediaFile | None = None,
        extras: Extras = NO_EXTRAS,
        reply_to: str | None = None,
        typing_ms: int = 0,
    ) -> tuple[Message, bool]:
        """Write the send (and its media bytes, first), then send it now or queue it.
        `text` is a media message's caption; `extras` its quote and mentions, or the
        location, contacts or poll it is; `reply_to` the quoted message's gateway id.
        With `typing_ms` the send is queued to go that long after its turn, and the
        outbound sender shows the session typing (recording, for a voice note) in the chat
        from its turn on (`typing_due`)."""
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
        turn = max(self.scheduler.reserve(session.id, rate, now), self._after_typed(session, now))
        at = turn + timedelta(milliseconds=typing_ms)
        immediate = session.state is SessionState.CONNECTED and at <= now
        message, created = await self.registry.messages.add(
            session.id,
            id=message_id,
            direction="out",
            chat=to,
            text=text,
            status=MessageStatus.PENDING if immediate else MessageStatus.QUEUED,
            idempotency_key=idempotency_key,
            idempotency_hash=idempotency_hash,
            scheduled_at=at,
            deadline_at=now + timedelta(seconds=self.settings.queue_deadline),
            media=meta,
            extras=extras,
            reply_to=reply_to,
        )
        if not created:
            if meta is not None and meta.ref is not None and meta.ref != _ref(message):
                await self.media.delete(meta.ref)  # an Idempotency-Key race was lost
            return message, False
        if not immediate:
            if typing_ms:
                # Later sends wait for this one (another typed send may have set later).
                self._not_before[session.id] = max(at, self._not_before.get(session.id, at))
                voice = meta is not None and meta.type == "voice"
                self._typing[message.id] = Typing(
                    session=session,
                    message_id=message.id,
                    chat=message.chat,
                    state="recording" if voice else "typing",
                    at=turn,
                )
            self._on_queued()
            return message, True
        return await self.send(session, message), True

    def _after_typed(self, session: Session, now: datetime) -> datetime:
        """The earliest a new send of the session may go: after its last typed one."""
        after = self._not_before.get(session.id)
        if after is None or after <= now:
            self._not_before.pop(session.id, None)
            return now
        return after

    def typing_due(self, now: datetime) -> list[Typing]:
        """The presences to show now (each handed out once)."""
        due = [t for t in self._typing.values() if t.at <= now]
        for t in due:
            del self._typing[t.message_id]
        return due

    async def show_typing(self, typing: Typing) -> None:
        """Show the presence before a typed send; one that cannot be shown (the session
        is not connected, the worker away) does not hold the message back."""
        session = typing.session
        try:
            await self.pool.call(
                session.route,
                session.label,
                lambda w: w.set_presence(session.client_id, typing.chat, typing.state),
            )
        except GatewayError as exc:
            logger.info(
                "session %s: %s before message %s not shown (%s)",
                session.label,
                typing.state,
                typing.message_id,
                exc.errcode,
            )

    async def send(self, session: Session, message: Message) -> Message:
        """Send a claimed (`pending`) message; returns it with its new status (and
        WhatsApp's id of it)."""
        try:
            wa_id = await self._deliver(session, message)
        except Exception as exc:
            reason = getattr(exc, "errcode", type(exc).__name__)
            if _retry_later(exc):
                logger.info(
                    "session %s: message %s queued again (%s)", session.label, message.id, reason
                )
                released = await self.registry.messages.release(session.id, message.id, reason)
                return released or message
            logger.warning("session %s: message %s failed: %s", session.label, message.id, reason)
            failed = await self.registry.messages.update_status(
                session.id, message.id, MessageStatus.FAILED, str(reason)
            )
            return failed or message
        sent = await self.registry.messages.update_status(
            session.id, message.id, MessageStatus.SENT, wa_id=wa_id
        )
        return sent or message

    async def _deliver(self, session: Session, message: Message) -> str:
        """Hand the message to its worker; WhatsApp's id of it. It goes to `chat`: the
        phone when known, else the LID it was addressed to."""
        media = message.media
        if media is None:
            return await self.pool.call(
                session.route,
                session.label,
                lambda w: w.send_text(
                    session.client_id, message.id, message.chat, message.text or "", message.extras
                ),
            )
        if media.ref is None:
            raise MediaMissing(N_("message {id} has no stored media"), id=message.id)
        try:
            data = await self.media.read(media.ref)
        except FileNotFoundError:
            raise MediaMissing(N_("the media of message {id} is gone"), id=message.id) from None
        return await self.pool.call(
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
                extras=message.extras,
            ),
        )
