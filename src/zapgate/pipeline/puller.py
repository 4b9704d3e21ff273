"""Follows each worker's event journal with a cursor kept in the registry and applies the
events to it: session states, inbound messages, delivery acks. At-least-once: the cursor
is saved after the events are applied, and applying an event twice changes nothing.

Entries are decoded by the worker's codec (`zapgate.worker.codec`); what an event does to
the registry is one applier per event type (`_appliers`). In the cluster topology a
worker's journal will be followed by the web process holding its lease."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from zapgate.aio import BackgroundTasks
from zapgate.domain.events import (
    ChatRead,
    EngineEvent,
    MessageAck,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    PollVoted,
    PresenceChanged,
    QrUpdated,
    ReactionReceived,
    StateChanged,
)
from zapgate.domain.ids import identity
from zapgate.domain.models import MediaMeta, MessageStatus, Route
from zapgate.domain.state import SessionState
from zapgate.errors import GatewayError
from zapgate.registry import Registry
from zapgate.registry.messages import ME
from zapgate.topology.pool import WorkerPool
from zapgate.worker import codec
from zapgate.worker.schemas import JournalEntry

logger = logging.getLogger(__name__)

Applier = Callable[[int, str, Any], Awaitable[None]]


class JournalPuller:
    """A loop per followed worker (`follow`), each long-polling that worker's journal.
    Routes followed before `start()` are pulled from once it is called."""

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
        self._started = False
        self._following: dict[str, Route] = {}
        self._session_ids: dict[str, int] = {}
        self._appliers: dict[type[Any], Applier] = {
            StateChanged: self._apply_state,
            MessageReceived: self._apply_message,
            QrUpdated: self._apply_qr,
            MessageAck: self._apply_ack,
            ReactionReceived: self._apply_reaction,
            MessageEdited: self._apply_edit,
            MessageRevoked: self._apply_revoke,
            PollVoted: self._apply_vote,
            PresenceChanged: self._apply_presence,
            ChatRead: self._apply_chat_read,
        }

    def follow(self, route: Route) -> None:
        key = route.worker_id
        if key in self._following:
            return
        self._following[key] = route
        if self._started:
            self._pull(route)

    def start(self) -> None:
        self._started = True
        for route in self._following.values():
            self._pull(route)

    def wake(self) -> None:
        """Nothing to do: each journal is long-polled, so news arrives without a nudge."""

    async def close(self) -> None:
        await self._tasks.close()
        self._following.clear()
        self._started = False

    def _pull(self, route: Route) -> None:
        self._tasks.create(self._run(route), name=f"journal:{route.worker_id}:puller")

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
            # Sessions are independent: each one's entries are applied in journal order,
            # all sessions at once, so their writes share group commits.
            by_client: dict[str, list[JournalEntry]] = {}
            for entry in page.items:
                by_client.setdefault(entry.client_id, []).append(entry)
            connected = any(
                await asyncio.gather(
                    *(self._apply_entries(key, cid, entries) for cid, entries in by_client.items())
                )
            )
            if page.items:
                self._on_applied(connected)
            if page.next != cursor:
                cursor = page.next
                await self.registry.cursors.set(key, cursor)

    async def _apply_entries(self, key: str, client_id: str, entries: list[JournalEntry]) -> bool:
        """Apply one session's entries in order; True when it became CONNECTED. A run of
        receipts is applied together."""
        connected = False
        receipts: list[MessageAck] = []
        for entry in entries:
            event: EngineEvent | None = None
            try:
                event = codec.decode(entry.type, entry.data)
                if isinstance(event, MessageAck) and event.message_id is None:
                    receipts.append(event)  # applied together
                    continue
                await self._apply_receipts(key, client_id, receipts)
                if event is not None:  # None: a kind this version does not know
                    await self.apply(client_id, event)
            except Exception:
                logger.exception("journal %s: applying event %s failed", key, entry.seq)
            connected |= isinstance(event, StateChanged) and event.state is SessionState.CONNECTED
        await self._apply_receipts(key, client_id, receipts)
        return connected

    async def _apply_receipts(self, key: str, client_id: str, receipts: list[MessageAck]) -> None:
        """Apply (and empty) a run of one session's receipts in one job, in journal
        order; a batch that fails is applied one receipt at a time."""
        if not receipts:
            return
        acks, receipts[:] = list(receipts), []
        sid = await self._session_id(client_id)
        if sid is None:
            return
        try:
            await self.registry.messages.update_statuses_by_wa_id(
                sid, [(ack.id, ack.status) for ack in acks]
            )
        except Exception:
            logger.warning("journal %s: a batch of receipts failed; one at a time", key)
            for ack in acks:
                try:
                    await self._apply_ack(sid, client_id, ack)
                except Exception:
                    logger.exception("journal %s: applying a receipt failed", key)

    async def _session_id(self, client_id: str) -> int | None:
        sid = self._session_ids.get(client_id)
        if sid is None:
            session = await self.registry.sessions.get_by_client_id(client_id)
            if session is None:
                return None
            sid = self._session_ids[client_id] = session.id
        return sid

    async def apply(self, client_id: str, event: EngineEvent) -> None:
        sid = await self._session_id(client_id)
        if sid is None:
            return  # a session deleted since, or hosted for another web tier
        await self._appliers[type(event)](sid, client_id, event)

    async def _apply_state(self, sid: int, client_id: str, event: StateChanged) -> None:
        state = event.state
        if await self.registry.sessions.update_state(sid, state, event.reason, event.phone) is None:
            self._session_ids.pop(client_id, None)
        if state is SessionState.LOGGED_OUT:
            await self.registry.sessions.clear_phone(sid)

    async def _apply_message(self, sid: int, client_id: str, event: MessageReceived) -> None:
        media = None
        if event.media is not None:
            media = MediaMeta(
                type=event.media.kind,
                mime=event.media.mime,
                size=event.media.size,
                filename=event.media.filename,
                ref=event.media.ref,
            )
        # A message the number sent from the phone is an outbound one, reported as
        # `message.sent`; the registry keeps one the gateway sent itself from repeating.
        await self.registry.messages.add(
            sid,
            id=event.id,
            wa_id=event.id,
            direction="out" if event.from_me else "in",
            chat=event.chat,
            chat_lid=event.chat_lid,
            text=event.text,
            status=MessageStatus.SENT if event.from_me else MessageStatus.RECEIVED,
            created_at=event.timestamp,
            media=media,
            extras=event.extras,
            from_me=event.from_me,
            sender=event.sender,
            sender_lid=event.sender_lid,
            sender_name=event.push_name,
        )
        if event.sender != event.chat and event.sender_lid is not None:
            await self.registry.lids.learn(sid, event.sender_lid, event.sender)

    # Actions on messages. The registry emits each event only when the action changes
    # something, so the gateway's own action coming back from WhatsApp is not reported
    # twice; one on a message this session does not have is dropped.
    async def _apply_reaction(self, sid: int, client_id: str, event: ReactionReceived) -> None:
        reactor = ME if event.from_me else event.sender
        await self.registry.messages.react(
            sid, event.target_id, reactor, event.emoji, reactor_lid=event.sender_lid
        )

    async def _apply_edit(self, sid: int, client_id: str, event: MessageEdited) -> None:
        await self.registry.messages.edit(sid, event.target_id, event.text, event.timestamp)

    async def _apply_revoke(self, sid: int, client_id: str, event: MessageRevoked) -> None:
        await self.registry.messages.revoke(sid, event.target_id, event.timestamp)

    async def _apply_vote(self, sid: int, client_id: str, event: PollVoted) -> None:
        await self.registry.messages.vote(
            sid,
            event.poll_id,
            event.sender,
            event.selected,
            event.selected_hashes,
            voter_lid=event.sender_lid,
        )

    async def _apply_presence(self, sid: int, client_id: str, event: PresenceChanged) -> None:
        data = {
            "chat": event.chat,
            "chat_lid": event.chat_lid,
            **identity(event.chat, event.chat_lid),
            "from": event.sender,
            "from_lid": event.sender_lid,
            "state": event.state,
            "last_seen": None if event.last_seen is None else event.last_seen.isoformat(),
        }
        await self.registry.outbox.record_event(sid, "presence.update", data)

    async def _apply_chat_read(self, sid: int, client_id: str, event: ChatRead) -> None:
        await self.registry.messages.read_chat(
            sid, event.chat, event.chat_lid, wa_ids=event.ids, at=event.timestamp
        )

    async def _apply_qr(self, sid: int, client_id: str, event: QrUpdated) -> None:
        await self.registry.outbox.record_event(
            sid, "session.qr", {"qr": event.qr, "expires_at": event.expires_at.isoformat()}
        )

    async def _apply_ack(self, sid: int, client_id: str, event: MessageAck) -> None:
        # The SENT ack names both ids (and comes before any receipt of its WhatsApp id);
        # receipts name WhatsApp's id only.
        if event.message_id is not None:
            await self.registry.messages.update_status(
                sid, event.message_id, event.status, wa_id=event.id
            )
        else:
            await self.registry.messages.update_status_by_wa_id(sid, event.id, event.status)
