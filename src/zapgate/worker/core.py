"""The worker: many WhatsApp sessions in one process, each with its own client id, session
dir and engine; every engine event is appended to the journal the web tier reads."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from zapgate.aio import BackgroundTasks, KeyedLock
from zapgate.domain.contacts import AddressBookEntry, ContactProfile, NumberCheck
from zapgate.domain.content import NO_EXTRAS, Extras, MessageRef
from zapgate.domain.events import (
    EngineEvent,
    MediaContent,
    MessageReceived,
    QrUpdated,
    StateChanged,
)
from zapgate.domain.ids import (
    is_valid_client_id,
    normalize_phone,
    normalize_recipient,
    resolve_session_dir,
)
from zapgate.domain.media import file_name
from zapgate.domain.state import SessionState
from zapgate.engines import Engine, EngineBackends, build_engine, validate_engine_name
from zapgate.errors import (
    Conflict,
    NotFound,
    ValidationFailed,
    not_connected,
    pairing_needs_qr_phase,
)
from zapgate.i18n import N_
from zapgate.simnet.client import SimLink
from zapgate.worker import codec
from zapgate.worker.journal import Journal
from zapgate.worker.manifest import Manifest, ManifestEntry
from zapgate.worker.schemas import JournalPage, SessionStatus, WorkerHealth

logger = logging.getLogger(__name__)


MEDIA_DIR = "media"


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass(slots=True)
class _Runtime:
    spec: ManifestEntry
    engine: Engine
    qr: str | None = None
    qr_expires_at: datetime | None = None


class Worker:
    """Hosts the sessions; owns the engine `backends` it is given (closed on shutdown)."""

    def __init__(
        self,
        *,
        data_dir: Path,
        worker_id: str,
        backends: EngineBackends,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.worker_id = worker_id
        self.backends = backends
        self.journal = Journal(self.data_dir / "worker-journal.db")
        self.manifest = Manifest(
            self.data_dir / "worker-sessions.db",
            legacy_json=self.data_dir / "worker-sessions.json",
        )
        self._runtimes: dict[str, _Runtime] = {}
        # Per client id (start/stop/logout/delete) and per `send:{client_id}:{message_id}`.
        self._lock = KeyedLock()
        self._tasks = BackgroundTasks()
        self.restored = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    async def initialize(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        await self.journal.open()
        self.manifest.load()

    async def shutdown(self) -> None:
        await self._tasks.close()
        for rt in list(self._runtimes.values()):
            try:
                await rt.engine.stop(reason="worker_shutdown")
            except Exception:
                logger.warning("stopping %s failed", rt.spec.client_id, exc_info=True)
        self._runtimes.clear()
        self.manifest.close()
        await self.journal.close()
        await self.backends.aclose()

    async def _restore(self) -> None:
        """Bring back every linked session without a QR, one at a time, each engine's
        `restore_interval` apart."""
        restored = 0
        for entry in self.manifest.entries():
            try:
                rt = self._runtime_for(entry)
                if rt.engine.has_credentials():
                    async with self._lock(entry.client_id):
                        await rt.engine.start()
                    restored += 1
                    await asyncio.sleep(rt.engine.restore_interval)
            except Exception:
                logger.warning("restoring session %s failed", entry.client_id, exc_info=True)
        if restored:
            logger.info("worker %s restored %d linked session(s)", self.worker_id, restored)
        self.restored.set()

    def start(self) -> None:
        """Begin restoring the linked sessions (`initialize` only opens the files)."""
        self._tasks.create(self._restore(), name=f"worker:{self.worker_id}:restore")

    # -- helpers -----------------------------------------------------------------------------
    def _runtime_for(self, spec: ManifestEntry) -> _Runtime:
        rt = self._runtimes.get(spec.client_id)
        if rt is not None:
            return rt
        session_dir = resolve_session_dir(self.data_dir, spec.session_dir)
        client_id = spec.client_id

        async def emit(event: EngineEvent) -> None:
            await self._on_event(client_id, event)

        engine = build_engine(
            spec.engine,
            client_id=client_id,
            session_dir=session_dir,
            emit=emit,
            options=self.backends.options,
            backends=self.backends,
        )
        rt = _Runtime(spec=spec, engine=engine)
        self._runtimes[client_id] = rt
        return rt

    def _known(self, client_id: str) -> _Runtime:
        rt = self._runtimes.get(client_id)
        if rt is None:
            entry = self.manifest.get(client_id)
            if entry is None:
                raise NotFound(
                    N_("worker {worker_id} has no session {client_id!r}"),
                    hint=N_("Start the session first (POST /v1/sessions/{{name}}/start)."),
                    worker_id=self.worker_id,
                    client_id=client_id,
                )
            rt = self._runtime_for(entry)
        return rt

    async def _on_event(self, client_id: str, event: EngineEvent) -> None:
        rt = self._runtimes.get(client_id)
        if isinstance(event, StateChanged):
            if rt is not None and event.state is not SessionState.SCAN_QR:
                rt.qr, rt.qr_expires_at = None, None
        elif isinstance(event, QrUpdated):
            if rt is not None:
                rt.qr, rt.qr_expires_at = event.qr, event.expires_at
        elif isinstance(event, MessageReceived) and event.media is not None:
            event = replace(event, media=await self._keep_media(rt, event, event.media))
        await self.journal.append(client_id, *codec.encode(event))

    async def _keep_media(
        self, rt: _Runtime | None, event: MessageReceived, media: MediaContent
    ) -> MediaContent:
        """Save an inbound message's media under its session dir (before the journal
        names it); returns the media with `ref` set when saved, without its bytes."""
        ref: str | None = None
        if media.data is not None and rt is not None:
            ref = f"{MEDIA_DIR}/{file_name(event.id)}"
            try:
                await asyncio.to_thread(_write_file, rt.engine.session_dir / ref, media.data)
            except OSError:
                logger.warning(
                    "session %s: could not save media of %s",
                    rt.spec.client_id,
                    event.id,
                    exc_info=True,
                )
                ref = None
        return replace(media, ref=ref, data=None)

    def _status(self, rt: _Runtime) -> SessionStatus:
        e = rt.engine
        return SessionStatus(
            client_id=rt.spec.client_id,
            engine=rt.spec.engine,
            state=e.state,
            state_reason=e.state_reason,
            phone=e.phone,
            qr=rt.qr if e.state is SessionState.SCAN_QR else None,
            qr_expires_at=rt.qr_expires_at if e.state is SessionState.SCAN_QR else None,
        )

    # -- the internal API --------------------------------------------------------------------
    async def health(self) -> WorkerHealth:
        states = Counter(rt.engine.state.value for rt in self._runtimes.values())
        return WorkerHealth(
            worker_id=self.worker_id,
            sessions=len(self.manifest.entries()),
            states=dict(states),
            journal_seq=self.journal.last_seq,
        )

    async def start_session(self, client_id: str, session_dir: str, engine: str) -> SessionStatus:
        if not is_valid_client_id(client_id):
            raise ValidationFailed(
                N_("{client_id!r} is not a valid client id"), client_id=client_id[:80]
            )
        validate_engine_name(engine)
        resolve_session_dir(self.data_dir, session_dir)
        spec = ManifestEntry(client_id=client_id, session_dir=session_dir, engine=engine)
        async with self._lock(client_id):
            rt = self._runtimes.get(client_id)
            if rt is not None and rt.spec != spec:
                if rt.engine.state.is_running:
                    raise Conflict(
                        N_("session {client_id} is running with engine {engine}"),
                        hint=N_("Stop it before changing its engine."),
                        client_id=client_id,
                        engine=rt.spec.engine,
                    )
                del self._runtimes[client_id]
            self.manifest.put(spec)
            rt = self._runtime_for(spec)
            logger.info("worker %s: starting session %s", self.worker_id, client_id)
            await rt.engine.start()
            return self._status(rt)

    async def stop_session(self, client_id: str) -> SessionStatus:
        rt = self._known(client_id)
        async with self._lock(client_id):
            if rt.engine.state.is_running:
                await rt.engine.stop()
            return self._status(rt)

    async def logout_session(self, client_id: str) -> SessionStatus:
        rt = self._known(client_id)
        async with self._lock(client_id):
            if rt.engine.state.is_running or rt.engine.has_credentials():
                await rt.engine.logout()
            return self._status(rt)

    async def delete_session(self, client_id: str) -> None:
        if self.manifest.get(client_id) is None and client_id not in self._runtimes:
            return
        rt = self._known(client_id)
        async with self._lock(client_id):
            if rt.engine.state.is_running:
                await rt.engine.stop(reason="deleted")
            self._runtimes.pop(client_id, None)
            self.manifest.remove(client_id)
            await asyncio.to_thread(shutil.rmtree, rt.engine.session_dir, True)
        logger.info("worker %s: deleted session %s", self.worker_id, client_id)

    async def status(self, client_id: str) -> SessionStatus:
        return self._status(self._known(client_id))

    async def pair_code(self, client_id: str, phone: str) -> str:
        rt = self._known(client_id)
        phone = normalize_phone(phone)
        if rt.engine.state not in (SessionState.SCAN_QR, SessionState.PAIRING):
            raise pairing_needs_qr_phase(client_id, rt.engine.state)
        return await rt.engine.pair_code(phone)

    async def send_text(
        self, client_id: str, message_id: str, to: str, text: str, extras: Extras = NO_EXTRAS
    ) -> str:
        """Send a text (quoting `extras.quote`, mentioning `extras.mentions`, with the card
        of its link, `extras.preview`), or, when `extras` holds one, a location, contact
        cards or a poll (`text` is then unused)."""
        to = normalize_recipient(to)
        quote = extras.quote

        async def send(e: Engine) -> str:
            if extras.location is not None:
                return await e.send_location(
                    message_id=message_id, to=to, location=extras.location, quote=quote
                )
            if extras.contacts:
                return await e.send_contacts(
                    message_id=message_id, to=to, contacts=extras.contacts, quote=quote
                )
            if extras.poll is not None:
                return await e.send_poll(message_id=message_id, to=to, poll=extras.poll)
            return await e.send_text(
                message_id=message_id,
                to=to,
                text=text,
                quote=quote,
                mentions=extras.mentions,
                preview=extras.preview,
            )

        return await self._send(client_id, message_id, send)

    async def send_media(
        self,
        client_id: str,
        message_id: str,
        to: str,
        *,
        kind: str,
        data: bytes,
        mime: str,
        filename: str | None,
        caption: str | None,
        extras: Extras = NO_EXTRAS,
    ) -> str:
        """Send media (a sticker or voice note too), quoting `extras.quote`."""
        return await self._send(
            client_id,
            message_id,
            lambda e: e.send_media(
                message_id=message_id,
                to=normalize_recipient(to),
                kind=kind,
                data=data,
                mime=mime,
                filename=filename,
                caption=caption,
                quote=extras.quote,
            ),
        )

    # Acting on a message. A repeat sets the same state again (the latest reaction or
    # edit wins, a revoked message stays revoked), so these need no de-duplication.
    async def react(self, client_id: str, chat: str, target: MessageRef, emoji: str) -> str:
        engine = self._connected(client_id)
        return await engine.react(chat=normalize_recipient(chat), target=target, emoji=emoji)

    async def edit(self, client_id: str, chat: str, target_id: str, text: str) -> str:
        engine = self._connected(client_id)
        return await engine.edit(chat=normalize_recipient(chat), target_id=target_id, text=text)

    async def revoke(self, client_id: str, chat: str, target: MessageRef) -> str:
        engine = self._connected(client_id)
        return await engine.revoke(chat=normalize_recipient(chat), target=target)

    async def mark_read(
        self, client_id: str, chat: str, ids: Sequence[str], sender: str | None = None
    ) -> None:
        engine = self._connected(client_id)
        await engine.mark_read(chat=normalize_recipient(chat), ids=ids, sender=sender)

    async def set_presence(self, client_id: str, chat: str, state: str) -> None:
        engine = self._connected(client_id)
        await engine.set_presence(chat=normalize_recipient(chat), state=state)

    # -- contacts and calls ------------------------------------------------------------------
    async def check_numbers(self, client_id: str, phones: Sequence[str]) -> list[NumberCheck]:
        engine = self._connected(client_id)
        return await engine.check_numbers([normalize_phone(p) for p in phones])

    async def contact_profile(self, client_id: str, address: str) -> ContactProfile:
        engine = self._connected(client_id)
        return await engine.contact_profile(normalize_recipient(address))

    async def set_blocked(self, client_id: str, address: str, blocked: bool) -> None:
        engine = self._connected(client_id)
        await engine.set_blocked(normalize_recipient(address), blocked)

    async def address_book(self, client_id: str) -> list[AddressBookEntry]:
        return await self._connected(client_id).address_book()

    async def reject_call(self, client_id: str, call_id: str, caller: str) -> None:
        engine = self._connected(client_id)
        await engine.reject_call(call_id=call_id, caller=normalize_recipient(caller))

    def _connected(self, client_id: str) -> Engine:
        rt = self._known(client_id)
        if rt.engine.state is not SessionState.CONNECTED:
            raise not_connected(client_id, rt.engine.state)
        return rt.engine

    async def media(self, client_id: str, message_id: str) -> bytes:
        """The saved media of an inbound message."""
        rt = self._known(client_id)
        path = rt.engine.session_dir / MEDIA_DIR / file_name(message_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NotFound(
                N_("session {client_id} has no media for message {message_id!r}"),
                hint=N_("Only inbound media messages have media on the worker."),
                client_id=client_id,
                message_id=message_id[:80],
            ) from None

    async def _send(
        self, client_id: str, message_id: str, send: Callable[[Engine], Awaitable[str]]
    ) -> str:
        engine = self._connected(client_id)
        # One message id is sent once (a retry waits for the first attempt and is answered
        # from the journal); different messages of a session go concurrently.
        async with self._lock(f"send:{client_id}:{message_id}"):
            prior = await self.journal.sent_id(client_id, message_id)
            if prior is not None:
                logger.info(
                    "session %s: message %s was already sent; not sending again",
                    client_id,
                    message_id,
                )
                return prior
            wa_id = await send(engine)
            await self.journal.mark_sent(client_id, message_id, wa_id)
            return wa_id

    async def events(self, after: int, limit: int = 100, wait: float = 0.0) -> JournalPage:
        return await self.journal.read(after, limit=min(max(limit, 1), 1000), wait=min(wait, 30.0))

    # -- simulated network (development) -----------------------------------------------------
    def _sim(self) -> SimLink:
        link = self.backends.sim
        if link is None:
            raise NotFound(
                N_("this worker has no simulated network"), hint=N_("Use the sim engine.")
            )
        return link

    async def sim_scan(self, qr: str, phone: str) -> str:
        return await self._sim().scan(qr, normalize_phone(phone))

    async def sim_phone_send(
        self,
        phone: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Extras = NO_EXTRAS,
    ) -> str:
        return await self._sim().phone_send(
            normalize_phone(phone), normalize_phone(to), text, media, extras.to_dict() or None
        )

    async def sim_phone_send_own(self, owner: str, to: str, text: str) -> str:
        return await self._sim().phone_send_own(normalize_phone(owner), normalize_phone(to), text)

    async def sim_phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        return await self._sim().phone_react(
            normalize_phone(phone), normalize_phone(to), target_id, emoji
        )

    async def sim_phone_edit(self, phone: str, to: str, target_id: str, text: str) -> str:
        return await self._sim().phone_edit(
            normalize_phone(phone), normalize_phone(to), target_id, text
        )

    async def sim_phone_revoke(self, phone: str, to: str, target_id: str) -> str:
        return await self._sim().phone_revoke(
            normalize_phone(phone), normalize_phone(to), target_id
        )

    async def sim_phone_vote(
        self, phone: str, to: str, poll_id: str, options: Sequence[str]
    ) -> None:
        await self._sim().phone_vote(normalize_phone(phone), normalize_phone(to), poll_id, options)

    async def sim_phone_presence(self, phone: str, to: str, state: str) -> None:
        await self._sim().phone_presence(normalize_phone(phone), normalize_phone(to), state)

    async def sim_off_whatsapp(self, phone: str) -> None:
        await self._sim().off_whatsapp(normalize_phone(phone))

    async def sim_set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None:
        await self._sim().set_profile(
            normalize_phone(phone),
            push_name=push_name,
            about=about,
            business=business,
            picture=picture,
        )

    async def sim_phone_call(self, phone: str, to: str, video: bool = False) -> str:
        return await self._sim().phone_call(
            normalize_phone(phone), normalize_phone(to), video=video
        )

    async def sim_phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        await self._sim().phone_save_contact(normalize_phone(owner), normalize_phone(phone), name)

    async def sim_phone_log(self, phone: str) -> list[dict[str, Any]]:
        return await self._sim().phone_log(normalize_phone(phone))
