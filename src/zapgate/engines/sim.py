"""The sim engine: one session on the simulated WhatsApp network (zapgate.simnet).

It behaves like a real linked device: it resumes from `session_dir/sim-creds.json`
without a QR, otherwise shows rotating QRs (or a pairing code) until a phone links it;
one reader task long-polls the network and turns what arrives into engine events; a
dropped or unreachable network means DISCONNECTED and reconnecting with capped
exponential backoff, never a crash or a hang.

The network gives every sent message its own id (returned by the send, named by its
receipts), and may address a chat by LID: the engine reports the phone whenever it can
know it, from the number sent along (`sender_alt`), from what it learned before, or from
the network's mapping for this device (`pn_for_lid`, as whatsmeow's store).

Beyond text and media it sends replies, mentions, locations, contacts, polls, reactions,
edits, deletions, read receipts and presence, and turns what the network reports of the
other side's (`reaction`, `edit`, `revoke`, `vote`, `presence` events, and messages with
extras or `from_me`) into engine events; a text may carry its link's preview, and the
account reading a chat elsewhere (a `read` event) is a `ChatRead`. A poll vote carries
only hashes of the chosen options, as on WhatsApp: the engine remembers the options of
the polls it sent (`session_dir/sim-polls.json`) to name them.

Contacts and calls are the network's too: number checks, profiles, blocking and the
address book are asked of it (answers naming a LID are resolved as messages are, and a
check teaches the session the LIDs of the numbers it found); a `call` event is a
`CallReceived`, which the session may reject.
"""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from zapgate.domain.contacts import AddressBookEntry, ContactProfile, NumberCheck
from zapgate.domain.content import (
    ContactCard,
    Extras,
    LinkPreview,
    Location,
    MessageRef,
    Poll,
    Quote,
)
from zapgate.domain.events import (
    CallReceived,
    ChatRead,
    MediaContent,
    MessageAck,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    PollVoted,
    PresenceChanged,
    QrUpdated,
    ReactionReceived,
)
from zapgate.domain.ids import is_lid, normalize_phone, normalize_recipient
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState
from zapgate.engines.base import Emit, Engine, EngineOptions
from zapgate.errors import EngineError, GatewayError, not_connected, pairing_needs_qr_phase
from zapgate.i18n import N_
from zapgate.jsonfile import atomic_write_json, read_json
from zapgate.simnet.client import SimLink
from zapgate.simnet.content import option_hash

CREDS_FILE = "sim-creds.json"
POLLS_FILE = "sim-polls.json"
# The polls whose options the engine remembers, the oldest forgotten first.
MAX_POLLS = 1000
# Receipts; SENT is reported by the final send methods (engines/base.py).
_ACKS = {s.value: s for s in (MessageStatus.DELIVERED, MessageStatus.READ)}
# Leaving the network on stop is a courtesy (it invalidates the QR on show); never let it
# hold up stop().
_RELEASE_TIMEOUT = 1.0


class _Dropped(Exception):
    """The network dropped our connection; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _reason(exc: BaseException) -> str:
    text = exc.error if isinstance(exc, GatewayError) else f"{type(exc).__name__}: {exc}"
    return text[:300]


def _timestamp(raw: object) -> datetime:
    if isinstance(raw, str):
        try:
            ts = datetime.fromisoformat(raw)
            return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _opt(raw: object) -> str | None:
    return None if raw is None else str(raw)


def _media(raw: object) -> MediaContent | None:
    if not isinstance(raw, dict):
        return None
    data = base64.b64decode(str(raw["data"])) if raw.get("data") is not None else None
    return MediaContent(
        kind=str(raw["kind"]),
        mime=str(raw.get("mime") or "application/octet-stream"),
        size=int(raw.get("size") or (len(data) if data is not None else 0)),
        filename=None if raw.get("filename") is None else str(raw["filename"]),
        sha256=None if raw.get("sha256") is None else str(raw["sha256"]),
        data=data,
    )


class SimEngine(Engine):
    name: ClassVar[str] = "sim"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            "send_media",
            "pair_code",
            "reply",
            "send_location",
            "send_contacts",
            "polls",
            "reactions",
            "edit",
            "revoke",
            "read_receipts",
            "presence",
            "link_preview",
            "contacts",
            "calls",
        }
    )

    # Instance-overridable so tests can reconnect fast; production keeps the defaults.
    reconnect_base: float = 0.5
    reconnect_cap: float = 30.0
    poll_timeout: float = 20.0

    def __init__(
        self,
        *,
        client_id: str,
        session_dir: Path,
        emit: Emit,
        options: EngineOptions,
        link: SimLink | None = None,
    ) -> None:
        super().__init__(client_id=client_id, session_dir=session_dir, emit=emit, options=options)
        self.link = link
        self._reader: asyncio.Task[None] | None = None
        # The task waiting for a link: QR rotation, or the pairing-code deadline.
        self._waiter: asyncio.Task[None] | None = None
        self._cursor = 0
        self._closing = False
        # The LID <-> phone mappings this session has seen.
        self._phones: dict[str, str] = {}  # LID -> phone
        self._lids: dict[str, str] = {}  # phone -> LID
        # The options of the polls this session sent, by WhatsApp's id (loaded lazily).
        self._polls: dict[str, list[str]] | None = None

    # -- helpers -----------------------------------------------------------------------------
    @property
    def device_id(self) -> str:
        return self.client_id

    @property
    def creds_path(self) -> Path:
        return self.session_dir / CREDS_FILE

    @property
    def polls_path(self) -> Path:
        return self.session_dir / POLLS_FILE

    def _known_polls(self) -> dict[str, list[str]]:
        if self._polls is None:
            try:
                data = read_json(self.polls_path)
            except FileNotFoundError:
                data = {}
            except (OSError, ValueError) as exc:
                self.log.warning(
                    "unreadable %s (%s); old polls' votes name no options", POLLS_FILE, exc
                )
                data = {}
            self._polls = (
                {str(k): [str(o) for o in v] for k, v in data.items() if isinstance(v, list)}
                if isinstance(data, dict)
                else {}
            )
        return self._polls

    def _remember_poll(self, poll_id: str, options: tuple[str, ...]) -> None:
        polls = self._known_polls()
        polls[poll_id] = list(options)
        while len(polls) > MAX_POLLS:
            del polls[next(iter(polls))]
        atomic_write_json(self.polls_path, polls, mode=0o600)

    def _link(self) -> SimLink:
        link = self.link
        if link is None:
            raise EngineError(
                N_("session {client_id}: the sim engine has no simulated network"),
                hint=N_(
                    "Run with ZAPGATE_ENGINE=sim through zapgate serve/worker, which build one."
                ),
                client_id=self.client_id,
            )
        return link

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=f"session:{self.client_id}:{what}")
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.log.error("task %s failed: %r", task.get_name(), exc, exc_info=exc)

    def _cancel_waiter(self) -> None:
        # No await: the waiter only sleeps or asks for a QR, so cancelling is immediate, and
        # not awaiting keeps us out of a wait cycle with a waiter that is calling stop().
        if self._waiter is not None and self._waiter is not asyncio.current_task():
            self._waiter.cancel()

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [
            t
            for t in (self._reader, self._waiter)
            if t is not None and t is not current and not t.done()
        ]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _load_creds(self) -> dict[str, Any] | None:
        try:
            data = read_json(self.creds_path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.log.warning("unreadable %s (%s); a new link is needed", CREDS_FILE, exc)
            return None
        return data if isinstance(data, dict) else None

    def _save_creds(self, creds: dict[str, Any]) -> None:
        atomic_write_json(self.creds_path, creds, mode=0o600)

    def _delete_creds(self) -> None:
        self.creds_path.unlink(missing_ok=True)

    def _backoff(self, attempt: int) -> float:
        # Full-ish jitter so many sessions dropped together do not reconnect in lockstep.
        delay = min(self.reconnect_cap, self.reconnect_base * 2.0**attempt)
        return float(delay * random.uniform(0.5, 1.0))

    async def _emit_qr(self, qr: str, ttl: float) -> None:
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        await self.emit(QrUpdated(qr=qr, expires_at=expires))

    # -- connection --------------------------------------------------------------------------
    async def _connect(self, link: SimLink) -> None:
        """Open the connection: resume with saved creds, else start showing QRs."""
        had_file = self.creds_path.exists()
        creds = self._load_creds()
        self._cursor = 0  # every connection reads its stream from the start
        phone = await link.connect(self.device_id, creds)
        if phone is not None:
            await self.set_state(SessionState.CONNECTED, None, phone=phone)
            return
        if had_file:
            self.log.warning("the network no longer knows this device; a new link is needed")
            self._delete_creds()
            self._phone = None
        await self._begin_qr(link)

    async def _begin_qr(self, link: SimLink) -> None:
        self._cancel_waiter()
        qr = await link.request_qr(self.device_id)
        await self.set_state(SessionState.SCAN_QR)
        await self._emit_qr(qr, self.options.qr_first_ttl)
        self._waiter = self._spawn(self._rotate_qr(link), "qr")

    async def _rotate_qr(self, link: SimLink) -> None:
        shown, ttl = 1, self.options.qr_first_ttl
        while True:
            await asyncio.sleep(ttl)
            if shown >= self.options.qr_max_rotations:
                self.log.info("no scan after %d QR codes; stopping", shown)
                await self.stop(reason="qr_timeout")
                return
            try:
                qr = await link.request_qr(self.device_id)
            except GatewayError as exc:
                # The reader notices the same trouble and reconnects; a QR we cannot get
                # is not worth a second recovery path.
                self.log.warning("could not rotate the QR: %s", exc.error)
                return
            shown, ttl = shown + 1, self.options.qr_ttl
            await self._emit_qr(qr, ttl)

    async def _pairing_deadline(self) -> None:
        # A code waits as long as a full round of QRs would have.
        opts = self.options
        await asyncio.sleep(opts.qr_first_ttl + opts.qr_ttl * max(opts.qr_max_rotations - 1, 0))
        self.log.info("pairing code not entered in time; stopping")
        await self.stop(reason="pair_code_timeout")

    async def _dropped(self, reason: str) -> None:
        self._cancel_waiter()
        if reason != self._reason or self._state is not SessionState.DISCONNECTED:
            self.log.warning("disconnected: %s", reason)
        await self.set_state(SessionState.DISCONNECTED, reason)

    # -- the reader --------------------------------------------------------------------------
    async def _run(self, link: SimLink, connected: bool) -> None:
        """Read events while connected; on a drop, reconnect with backoff. Returns only when
        the device was logged out (or is cancelled by stop/logout)."""
        attempt = 0
        while True:
            if not connected:
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                try:
                    await self._connect(link)
                except Exception as exc:
                    if not isinstance(exc, GatewayError):
                        self.log.debug("reconnect failed", exc_info=True)
                    await self._dropped(_reason(exc))
                    continue
                attempt = 0
            try:
                await self._read(link)
                return
            except _Dropped as exc:
                await self._dropped(exc.reason)
            except Exception as exc:
                if not isinstance(exc, GatewayError):
                    self.log.warning("reader failed", exc_info=True)
                await self._dropped(_reason(exc))
            connected = False

    async def _read(self, link: SimLink) -> None:
        while True:
            events = await link.next_events(self.device_id, self._cursor, self.poll_timeout)
            for event in events:
                self._cursor = max(self._cursor, int(event.get("seq", 0)))
                kind = event.get("type")
                if kind == "disconnected":
                    raise _Dropped(str(event.get("reason") or "disconnected"))
                if kind == "logged_out":
                    await self._logged_out(str(event.get("reason") or "logged_out"))
                    return
                try:
                    await self._dispatch(kind, event)
                except (KeyError, TypeError, ValueError) as exc:
                    self.log.warning("ignored a malformed %s event: %r", kind, exc)

    async def _resolve(self, address: str, alt: str | None) -> tuple[str, str | None]:
        """(the address to report, its LID) of a phone or LID the network named, with the
        other address of the same account when the network sent it along."""
        if is_lid(address):
            phone = alt if alt and not is_lid(alt) else self._phones.get(address)
            if phone is None:
                phone = await self._link().pn_for_lid(self.device_id, address)
            if phone is None:
                return address, address
            self._phones[address], self._lids[phone] = phone, address
            return phone, address
        lid = alt if alt and is_lid(alt) else self._lids.get(address)
        if lid is not None:
            self._phones[lid], self._lids[address] = address, lid
        return address, lid

    async def _where(self, event: dict[str, Any]) -> tuple[str, str | None, str, str | None]:
        """(chat, chat's LID, sender, sender's LID) of a message or action event."""
        raw_chat, raw_sender = str(event["chat"]), str(event["sender"])
        sender, sender_lid = await self._resolve(raw_sender, _opt(event.get("sender_alt")))
        if raw_chat == raw_sender:  # a 1:1 chat is named after the other side
            return sender, sender_lid, sender, sender_lid
        chat, chat_lid = await self._resolve(raw_chat, _opt(event.get("chat_alt")))
        return chat, chat_lid, sender, sender_lid

    async def _extras(self, event: dict[str, Any]) -> Extras:
        raw = {
            k: event[k]
            for k in ("mentions", "location", "contacts", "poll", "preview")
            if event.get(k)
        }
        quote = event.get("quote")
        if isinstance(quote, dict):
            sender = _opt(quote.get("sender"))
            if sender is not None:
                sender, _ = await self._resolve(sender, None)
            raw["quote"] = {"id": quote["id"], "sender": sender, "text": quote.get("text")}
        return Extras.from_dict(raw)

    async def _message(self, event: dict[str, Any]) -> MessageReceived:
        chat, chat_lid, sender, sender_lid = await self._where(event)
        return MessageReceived(
            id=str(event["id"]),
            chat=chat,
            sender=sender,
            text=_opt(event.get("text")),
            timestamp=_timestamp(event.get("timestamp")),
            media=_media(event.get("media")),
            chat_lid=chat_lid,
            sender_lid=sender_lid,
            from_me=bool(event.get("from_me")),
            extras=await self._extras(event),
            push_name=_opt(event.get("push_name")),
            raw=event,
        )

    async def _action(self, kind: object, event: dict[str, Any]) -> bool:
        """Emit the event of the other side's action `kind`; False when it is none."""
        if kind not in ("reaction", "edit", "revoke", "vote", "presence"):
            return False
        chat, chat_lid, sender, sender_lid = await self._where(event)
        where: dict[str, Any] = {
            "chat": chat,
            "sender": sender,
            "chat_lid": chat_lid,
            "sender_lid": sender_lid,
            "raw": event,
        }
        ts, from_me = _timestamp(event.get("timestamp")), bool(event.get("from_me"))
        if kind == "reaction":
            await self.emit(
                ReactionReceived(
                    id=str(event["id"]),
                    target_id=str(event["target_id"]),
                    emoji=str(event["emoji"]),
                    timestamp=ts,
                    from_me=from_me,
                    **where,
                )
            )
        elif kind == "edit":
            await self.emit(
                MessageEdited(
                    target_id=str(event["target_id"]),
                    text=str(event["text"]),
                    timestamp=ts,
                    from_me=from_me,
                    **where,
                )
            )
        elif kind == "revoke":
            await self.emit(
                MessageRevoked(
                    target_id=str(event["target_id"]), timestamp=ts, from_me=from_me, **where
                )
            )
        elif kind == "vote":
            await self.emit(self._vote(event, ts, where))
        else:
            await self.emit(PresenceChanged(state=str(event["state"]), **where))
        return True

    async def _call(self, event: dict[str, Any]) -> CallReceived:
        _, _, caller, caller_lid = await self._where(event)
        return CallReceived(
            id=str(event["id"]),
            caller=caller,
            timestamp=_timestamp(event.get("timestamp")),
            video=bool(event.get("video")),
            group=bool(event.get("group")),
            caller_lid=caller_lid,
            raw=event,
        )

    async def _chat_read(self, event: dict[str, Any]) -> ChatRead:
        """The account read a chat elsewhere (its phone): the network names the chat as a
        message of the account's own does (`chat`, its other address in `chat_alt`)."""
        chat, chat_lid = await self._resolve(str(event["chat"]), _opt(event.get("chat_alt")))
        return ChatRead(
            chat=chat,
            chat_lid=chat_lid,
            ids=tuple(str(i) for i in event["ids"]),
            timestamp=_timestamp(event.get("timestamp")),
            raw=event,
        )

    def _vote(self, event: dict[str, Any], ts: datetime, where: dict[str, Any]) -> PollVoted:
        poll_id = str(event["poll_id"])
        hashes = tuple(str(h) for h in event["selected_hashes"])
        options = {option_hash(o): o for o in self._known_polls().get(poll_id, ())}
        selected = tuple(options[h] for h in hashes if h in options)
        return PollVoted(
            poll_id=poll_id,
            selected=selected if len(selected) == len(hashes) else (),
            selected_hashes=hashes,
            timestamp=ts,
            **where,
        )

    async def _dispatch(self, kind: object, event: dict[str, Any]) -> None:
        if kind == "message":
            await self.emit(await self._message(event))
        elif kind == "ack":
            status = _ACKS[str(event["status"])]
            await self.emit(MessageAck(id=str(event["id"]), status=status, raw=event))
        elif kind == "paired":
            await self._paired(event)
        elif kind == "read":
            await self.emit(await self._chat_read(event))
        elif kind == "call":
            await self.emit(await self._call(event))
        elif not await self._action(kind, event):
            self.log.debug("ignored event type %r", kind)

    async def _paired(self, event: dict[str, Any]) -> None:
        creds = event["creds"]
        phone = str(creds["phone"])
        if not isinstance(creds.get("token"), str):
            raise ValueError("paired event without a token")
        if self._closing:
            return  # stop() is under way (e.g. the QR timed out at the same moment)
        self._cancel_waiter()
        self._save_creds({"device_id": self.device_id, "phone": phone, "token": creds["token"]})
        await self.set_state(SessionState.CONNECTED, None, phone=phone)

    async def _logged_out(self, reason: str) -> None:
        self._cancel_waiter()
        self._delete_creds()
        self._phone = None
        await self.set_state(SessionState.LOGGED_OUT, reason)

    # -- the contract ------------------------------------------------------------------------
    async def _do_start(self) -> None:
        link = self._link()
        self._closing = False
        # The first connection is made inline so that, when start() returns, the session
        # is already CONNECTED or showing a QR (or DISCONNECTED with the reason).
        try:
            await self._connect(link)
            connected = True
        except GatewayError as exc:
            await self._dropped(_reason(exc))
            connected = False
        self._reader = self._spawn(self._run(link, connected), "reader")

    async def _do_stop(self) -> None:
        self._closing = True
        try:
            was_running = self._reader is not None
            await self._cancel_tasks()
            self._reader = None
            if was_running:
                await self._release()
        finally:
            self._closing = False

    async def _release(self) -> None:
        """Tell the network we left, so the QR on show stops working."""
        if self.link is None:
            return
        try:
            async with asyncio.timeout(_RELEASE_TIMEOUT):
                await self._link().disconnect(self.device_id)
        except (GatewayError, TimeoutError) as exc:
            self.log.debug("leaving the network failed: %s", exc)

    async def _do_logout(self) -> None:
        self._closing = True
        try:
            await self._cancel_tasks()
            self._reader = None
            if self.link is not None:
                try:
                    await self._link().logout(self.device_id)
                except GatewayError as exc:
                    # Forget the device here anyway: the user asked to unlink it, and a
                    # network that cannot be told will drop it on the next connect.
                    self.log.warning("the network did not take the logout: %s", exc.error)
            self._delete_creds()
        finally:
            self._closing = False

    async def _do_pair_code(self, phone: str) -> str:
        if self._state not in (SessionState.SCAN_QR, SessionState.PAIRING):
            raise pairing_needs_qr_phase(self.client_id, self._state)
        code = await self._link().pair_code(self.device_id, normalize_phone(phone))
        self._cancel_waiter()
        await self.set_state(SessionState.PAIRING)
        self._waiter = self._spawn(self._pairing_deadline(), "pairing")
        return code

    def _connected(self) -> SimLink:
        if self._state is not SessionState.CONNECTED:
            raise not_connected(self.client_id, self._state)
        return self._link()

    async def _send(
        self,
        message_id: str,
        to: str,
        text: str | None,
        media: dict[str, Any] | None = None,
        extras: Extras | None = None,
    ) -> str:
        link = self._connected()
        wire = extras.to_dict() if extras else None
        return await link.send(
            self.device_id, message_id, normalize_recipient(to), text, media, wire
        )

    async def _do_send_text(
        self,
        *,
        message_id: str,
        to: str,
        text: str,
        quote: Quote | None,
        mentions: tuple[str, ...],
        preview: LinkPreview | None,
    ) -> str:
        extras = Extras(quote=quote, mentions=mentions, preview=preview)
        return await self._send(message_id, to, text, extras=extras)

    async def _do_send_media(
        self,
        *,
        message_id: str,
        to: str,
        kind: str,
        data: bytes,
        mime: str,
        filename: str | None,
        caption: str | None,
        quote: Quote | None,
    ) -> str:
        media = {"kind": kind, "mime": mime, "filename": filename, "data": data}
        return await self._send(message_id, to, caption, media, Extras(quote=quote))

    async def _do_send_location(
        self, *, message_id: str, to: str, location: Location, quote: Quote | None
    ) -> str:
        return await self._send(message_id, to, None, extras=Extras(quote=quote, location=location))

    async def _do_send_contacts(
        self, *, message_id: str, to: str, contacts: tuple[ContactCard, ...], quote: Quote | None
    ) -> str:
        return await self._send(message_id, to, None, extras=Extras(quote=quote, contacts=contacts))

    async def _do_send_poll(self, *, message_id: str, to: str, poll: Poll) -> str:
        wa_id = await self._send(message_id, to, None, extras=Extras(poll=poll))
        self._remember_poll(wa_id, poll.options)
        return wa_id

    async def _do_react(self, *, chat: str, target: MessageRef, emoji: str) -> str:
        link = self._connected()
        return await link.react(self.device_id, normalize_recipient(chat), target.to_dict(), emoji)

    async def _do_edit(self, *, chat: str, target_id: str, text: str) -> str:
        link = self._connected()
        return await link.edit(self.device_id, normalize_recipient(chat), target_id, text)

    async def _do_revoke(self, *, chat: str, target: MessageRef) -> str:
        link = self._connected()
        return await link.revoke(self.device_id, normalize_recipient(chat), target.to_dict())

    async def _do_mark_read(self, *, chat: str, ids: tuple[str, ...], sender: str | None) -> None:
        link = self._connected()
        await link.mark_read(self.device_id, normalize_recipient(chat), ids, sender)

    async def _do_set_presence(self, *, chat: str, state: str) -> None:
        link = self._connected()
        await link.set_presence(self.device_id, normalize_recipient(chat), state)

    async def _do_check_numbers(self, phones: tuple[str, ...]) -> list[NumberCheck]:
        link = self._connected()
        checks = [
            NumberCheck.from_dict(c) for c in await link.check_numbers(self.device_id, phones)
        ]
        for check in checks:
            if check.lid is not None:
                await self._resolve(check.phone, check.lid)
        return checks

    async def _do_contact_profile(self, address: str) -> ContactProfile:
        link = self._connected()
        raw = await link.contact_profile(self.device_id, normalize_recipient(address))
        known, lid = await self._resolve(str(raw["address"]), _opt(raw.get("lid")))
        return ContactProfile.from_dict({**raw, "address": known, "lid": lid})

    async def _do_set_blocked(self, address: str, blocked: bool) -> None:
        link = self._connected()
        await link.set_blocked(self.device_id, normalize_recipient(address), blocked)

    async def _do_address_book(self) -> list[AddressBookEntry]:
        link = self._connected()
        entries = []
        for raw in await link.address_book(self.device_id):
            known, lid = await self._resolve(str(raw["address"]), _opt(raw.get("lid")))
            entries.append(AddressBookEntry.from_dict({**raw, "address": known, "lid": lid}))
        return entries

    async def _do_reject_call(self, *, call_id: str, caller: str) -> None:
        link = self._connected()
        await link.reject_call(self.device_id, call_id, normalize_recipient(caller))

    def _do_has_credentials(self) -> bool:
        return self.creds_path.is_file()
