"""The whatsmeow engine: one real WhatsApp multi-device session, run by neonize (the
Python binding of Go's whatsmeow) in a host process (host.py, placed by procs.py). This
module is the worker's side: the session's state machine, its reconnects and its QR and
pairing deadlines; it never loads neonize, it reads notes (rpc.py) the host sends.

* Before every connection attempt the engine checks, from the loop, that the host it must
  dial (WhatsApp's, or the configured proxy) accepts TCP connections. Without a network the
  session goes to DISCONNECTED naming the host and retries with capped exponential backoff
  and jitter, and no neonize client is made at all.
* A session never gives up on its own: failed connections are retried, in DISCONNECTED
  with the attempt count and the next try in the reason, every `reconnect_cap` seconds at
  most. FAILED is for what retrying cannot fix (a replaced stream, an outdated client) and
  for a temporary ban, retried once it expires.
* whatsmeow does not tell Python when a QR expires: our own timer stops the session with
  reason `qr_timeout` after `options.qr_max_rotations` codes, like the sim engine.
* Inbound media is downloaded by the host on a task of its own: a large file never holds
  up the session's other events.
* A poll vote carries only the sha256 of each chosen option: the engine remembers the
  options of the polls it sent and received (`whatsmeow-polls.json` in the session dir,
  the newest `POLL_MEMORY`) to name the choices.

See /work/shared/ENGINES.md for the facts behind each choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from zapgate.aio import BackgroundTasks
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
from zapgate.domain.ids import normalize_phone
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState
from zapgate.engines.backends import WhatsmeowRuntime
from zapgate.engines.base import Emit, Engine, EngineOptions
from zapgate.engines.whatsmeow import reasons, store
from zapgate.engines.whatsmeow.procs import HostCallFailed, HostGone, HostProcess
from zapgate.engines.whatsmeow.rpc import Note
from zapgate.errors import EngineError, not_connected, pairing_needs_qr_phase
from zapgate.i18n import N_
from zapgate.jsonfile import atomic_write_json, read_json

# whatsmeow closes the login websocket this long after the first QR code, whether a
# pairing code was asked for or not (qrchan.go); a pairing deadline past it waits for nothing.
LOGIN_WINDOW = 160.0
# Seconds past a temporary ban's expiry before connecting again.
BAN_MARGIN = 30.0
# After a successful pairing WhatsApp ends the stream (error 515) and whatsmeow connects
# again with the new device; when that connection has not come within this, the attempt
# is over and the session resumes as a linked device.
AFTER_PAIR = 30.0
STORE_FILE = "whatsmeow.db"
DEVICE_FILE = "whatsmeow-device.json"
POLLS_FILE = "whatsmeow-polls.json"
# How many polls (the newest) a session remembers the options of.
POLL_MEMORY = 500
RECEIPTS = {"delivered": MessageStatus.DELIVERED, "read": MessageStatus.READ}


class WhatsmeowEngine(Engine):
    name: ClassVar[str] = "whatsmeow"
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
    # A restart must not log every linked number in to WhatsApp at once from one address.
    restore_interval: ClassVar[float] = 0.05

    probe_timeout: float = 5.0
    # How long a shared host may take to stop one client before it is deemed wedged.
    join_timeout: float = 5.0
    # Inbound media larger than this is reported without its bytes (WhatsApp's document
    # ceiling).
    max_download_bytes: int = 100 * 1024 * 1024
    # At most this many inbound media downloads of one session at a time.
    max_downloads: int = 2

    def __init__(
        self,
        *,
        client_id: str,
        session_dir: Path,
        emit: Emit,
        options: EngineOptions,
        runtime: WhatsmeowRuntime,
    ) -> None:
        super().__init__(client_id=client_id, session_dir=session_dir, emit=emit, options=options)
        self.runtime = runtime
        self.config = runtime.config
        self.reconnect_base = self.config.reconnect_base
        self.reconnect_cap = self.config.reconnect_cap
        self.start_wait = self.config.start_wait
        # None disables the reachability check (the fake network of the tests).
        self.probe_target: tuple[str, int] | None = self._default_probe_target()
        self._tasks = BackgroundTasks()
        self._runner: asyncio.Task[None] | None = None
        self._waiter: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[Note] | None = None
        self._host: HostProcess | None = None
        self._attempt = 0
        self._closing = False
        self._logged_out: str | None = None
        self._qr_shown = 0
        self._login_started: float | None = None  # monotonic time of the first QR
        # Set by a note that ends the current connection attempt (a ConnectFailure, after
        # which whatsmeow does not reconnect by itself): the runner backs off.
        self._attempt_error: str | None = None
        self._host_died = False  # the last attempt ended because its host process died
        self._last_drop: str | None = None  # the last reason logged for a drop
        self.login_window = LOGIN_WINDOW
        self.ban_margin = BAN_MARGIN
        self.after_pair = AFTER_PAIR
        self._settled = asyncio.Event()
        self._downloads = asyncio.Semaphore(self.max_downloads)
        self._polls: dict[str, list[str]] | None = None  # poll id -> options, when loaded

    # -- paths and stored credentials ----------------------------------------------------------
    @property
    def store_path(self) -> Path:
        return self.session_dir / STORE_FILE

    @property
    def device_path(self) -> Path:
        return self.session_dir / DEVICE_FILE

    @property
    def polls_path(self) -> Path:
        return self.session_dir / POLLS_FILE

    @property
    def store(self) -> str:
        return self.config.store or str(self.store_path)

    def _default_probe_target(self) -> tuple[str, int] | None:
        if self.config.proxy:
            parts = urlsplit(self.config.proxy)
            if parts.hostname:
                default = 1080 if parts.scheme.startswith("socks") else 8080
                return parts.hostname, parts.port or default
        return reasons.WHATSAPP_HOST, reasons.WHATSAPP_PORT

    def _stored_device(self) -> dict[str, Any] | None:
        try:
            data = read_json(self.device_path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.log.warning("unreadable %s (%s)", DEVICE_FILE, exc)
            return None
        return data if isinstance(data, dict) and data.get("user") else None

    async def _save_device(self, jid: dict[str, Any] | None) -> None:
        """Remember which device is ours; called only once whatsmeow's store has it
        (whatsmeow saves the device before it reports a successful pairing)."""
        if not jid or not jid.get("user"):
            return
        data = {
            "user": str(jid["user"]),
            "device": int(jid.get("device", 0)),
            "server": str(jid.get("server") or "s.whatsapp.net"),
        }
        if self._stored_device() != data:
            await asyncio.to_thread(atomic_write_json, self.device_path, data, mode=0o600)

    async def _forget_device(self) -> None:
        device = self._stored_device()
        user = str(device["user"]) if device else None
        # The device file and the store's device go together (store.py says why).
        self.device_path.unlink(missing_ok=True)
        await store.forget(self.config.store, self.store_path, user)

    async def _check_device(self) -> str | None:
        """Make the device file and the store agree before a client is made; returns a
        reason when the store cannot be asked (the attempt waits and tries again)."""
        device = self._stored_device()
        try:
            if device is not None:
                user = str(device["user"])
                if not await store.has_device(self.config.store, self.store_path, user):
                    self.log.warning(
                        "the auth store no longer has device %s (logged out while away); "
                        "forgetting it",
                        user,
                    )
                    self.device_path.unlink(missing_ok=True)
            elif self.config.store is None and await store.has_device(None, self.store_path, None):
                # Linked before the device file existed: learn it from the store.
                jid = (await store.sqlite_devices(self.store_path))[0]
                user, _, server = jid.partition("@")
                await self._save_device(
                    {"user": user.split(":")[0].split(".")[0], "server": server or None}
                )
        except store.StoreUnreachable as exc:
            return f"cannot reach the auth store: {exc}"[:300]
        return None

    # -- tasks and the host --------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = self._tasks.create(coro, name=f"session:{self.client_id}:{what}")
        return task

    async def _launch(self, *, solo: bool) -> None:
        """Place the session on a host and start a client there for a new attempt."""
        inbox = self._inbox
        assert inbox is not None
        self._attempt += 1
        attempt = self._attempt

        def sink(note: Note) -> None:
            # attempt 0: the host died, whichever attempt it was running.
            inbox.put_nowait(replace(note, attempt=attempt) if note.attempt == 0 else note)

        device = self._stored_device()
        host = await self.runtime.pool().place(self.client_id, sink, solo=solo)
        self._host = host
        await host.call(
            "start",
            client=self.client_id,
            attempt=attempt,
            store=self.store,
            jid=device if self.config.store is not None else None,
            new_device=self.config.store is not None and device is None,
            proxy=self.config.proxy,
            timeout=self.join_timeout,
        )

    async def _stop_client(self) -> None:
        """End the current client: a solo host is killed (nothing else runs there, and an
        unpaired client cannot be stopped otherwise); a shared host is asked to stop it,
        and killed if it cannot (its other sessions start again in a new host)."""
        host, self._host = self._host, None
        self._attempt += 1  # what the old attempt still reports is ignored
        if host is None:
            return
        pool = self.runtime.pool()
        if host.solo:
            if self._state is SessionState.CONNECTED:
                # A linked device: let whatsmeow close its websocket cleanly, briefly.
                with contextlib.suppress(HostGone, HostCallFailed, TimeoutError):
                    await host.call("stop", client=self.client_id, join=0.5, timeout=1.0)
            await pool.release(host, self.client_id)
            return
        host.sessions.pop(self.client_id, None)
        ended = False
        with contextlib.suppress(HostGone, HostCallFailed, TimeoutError):
            reply = await host.call(
                "stop", client=self.client_id, join=self.join_timeout, timeout=self.join_timeout + 1
            )
            ended = bool(reply.header.get("ended"))
        if not ended and host.alive:
            self.log.warning(
                "whatsmeow host %s did not stop this client within %.0fs; ending it",
                host.name,
                self.join_timeout,
            )
            await host.kill()
        else:
            await pool.release(host, self.client_id)

    async def _call(self, op: Any, *, body: bytes = b"", **args: Any) -> Any:
        """One request about this session to its host."""
        host = self._host
        if host is None:
            raise not_connected(self.client_id, self._state)
        return await host.call(op, body=body, client=self.client_id, **args)

    # -- state helpers -------------------------------------------------------------------------
    def _cancel_waiter(self) -> None:
        if self._waiter is not None and self._waiter is not asyncio.current_task():
            self._waiter.cancel()
        self._waiter = None

    def _backoff(self, failures: int) -> float:
        # Jitter so many sessions dropped together do not retry in lockstep.
        delay = min(self.reconnect_cap, self.reconnect_base * 2.0 ** max(failures - 1, 0))
        return float(delay * random.uniform(0.5, 1.0))

    async def _probe(self) -> str | None:
        """None when the host to dial accepts TCP connections, else a reason naming it."""
        if self.probe_target is None:
            return None
        host, port = self.probe_target
        what = "proxy " if self.config.proxy else ""
        try:
            async with asyncio.timeout(self.probe_timeout):
                _, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            return f"cannot reach {what}{host}:{port}: timed out after {self.probe_timeout:.0f}s"
        except OSError as exc:
            detail = exc.strerror or str(exc) or type(exc).__name__
            return f"cannot reach {what}{host}:{port}: {detail}"[:300]
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    async def _emit_qr(self, code: str, ttl: float) -> None:
        await self.emit(QrUpdated(qr=code, expires_at=datetime.now(UTC) + timedelta(seconds=ttl)))

    # -- the runner: one connection at a time, backoff between them ----------------------------
    async def _run(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        failures = 0
        while not self._closing:
            reason = await self._probe() or await self._check_device()
            if reason is None:
                try:
                    # A session that must show a QR, or whose last attempt failed in Go
                    # (each such failure leaks a store handle), runs in a host of its own
                    # (procs.py); one whose host died goes back to a shared one.
                    leaky = failures > 0 and not self._host_died
                    await self._launch(solo=leaky or self._stored_device() is None)
                except (HostGone, HostCallFailed, TimeoutError, OSError) as exc:
                    reason = f"could not start the engine process: {exc}"[:300]
                else:
                    reason = await self._drain(inbox)
                    if self._closing or self._logged_out is not None:
                        return
                    if reason is None:
                        failures = 0  # it was up for a while and ended cleanly: start afresh
                        reason = "connection closed"
                await self._stop_client()
            if self._state in (SessionState.CONNECTED, SessionState.SCAN_QR):
                failures = 0
            failures += 1
            delay = self._backoff(failures)
            await self._dropped(reason, failures, delay)
            await asyncio.sleep(delay)

    async def _drain(self, inbox: asyncio.Queue[Note]) -> str | None:
        """Handle the notes of the current attempt until its connect() returns; returns its
        error, or None when it ended without one."""
        while True:
            note = await inbox.get()
            if note.attempt != self._attempt:
                continue  # left over from an attempt that was already stopped
            if note.kind == "ended":
                error = note.fields.get("error")
                self._host_died = bool(note.fields.get("host_died"))
                if not error:
                    return None
                error = str(error)
                return (
                    reasons.dial_reason(error)
                    if "dial" in error
                    else f"connection failed: {error}"[:300]
                )
            try:
                await self._on_note(note)
            except Exception as exc:
                # Whatever a note holds, the runner goes on: a dead runner would leave the
                # session showing CONNECTED with nobody listening.
                self.log.warning("ignored a %s note: %r", note.kind, exc, exc_info=True)
            if self._logged_out is not None or self._closing:
                return None
            if self._attempt_error is not None:
                error, self._attempt_error = self._attempt_error, None
                return error

    async def _dropped(self, reason: str, failures: int, delay: float) -> None:
        self._cancel_waiter()
        if reason != self._last_drop or self._state is not SessionState.DISCONNECTED:
            self.log.warning("disconnected: %s", reason)
        self._last_drop = reason
        if failures > 1:
            reason = f"{reason} (attempt {failures}, next in {delay:.0f}s)"[:300]
        await self.set_state(SessionState.DISCONNECTED, reason)
        self._settled.set()

    # -- QR ------------------------------------------------------------------------------------
    async def _on_qr(self, code: str) -> None:
        if self._state is SessionState.PAIRING:
            return  # a pairing code is being typed; the QR is not on show
        if self._qr_shown >= self.options.qr_max_rotations:
            self.log.info("no scan after %d QR codes; stopping", self._qr_shown)
            self._spawn(self.stop(reason="qr_timeout"), "qr-timeout")
            self._closing = True
            return
        self._qr_shown += 1
        first = self._qr_shown == 1
        if first:
            self._login_started = time.monotonic()
        ttl = self.options.qr_first_ttl if first else self.options.qr_ttl
        await self.set_state(SessionState.SCAN_QR)
        self._settled.set()
        await self._emit_qr(code, ttl)
        self._cancel_waiter()
        self._waiter = self._spawn(self._qr_deadline(ttl), "qr")

    async def _qr_deadline(self, ttl: float) -> None:
        await asyncio.sleep(ttl)
        if self._qr_shown < self.options.qr_max_rotations:
            # whatsmeow rotates codes by itself; give it one more TTL to send the next one
            # before deciding that it never will.
            await asyncio.sleep(max(self.options.qr_ttl, 2.0))
        self.log.info("no scan after %d QR codes; stopping", self._qr_shown)
        self._waiter = None
        await self.stop(reason="qr_timeout")

    async def _pairing_deadline(self) -> None:
        opts = self.options
        wait = opts.qr_first_ttl + opts.qr_ttl * max(opts.qr_max_rotations - 1, 0)
        if self._login_started is not None:
            # Not past the moment whatsmeow closes the login socket (issue 14 item 9).
            closes_in = self._login_started + self.login_window - time.monotonic()
            wait = min(wait, max(closes_in, 0.0))
        await asyncio.sleep(wait)
        self.log.info("pairing code not entered in time; stopping")
        self._waiter = None
        await self.stop(reason="pair_code_timeout")

    async def _connect_after_pairing(self, attempt: int) -> None:
        await asyncio.sleep(self.after_pair)
        if attempt == self._attempt and self._state is not SessionState.CONNECTED:
            self._waiter = None
            self._attempt_error = "paired, but the connection after pairing did not come"
            # Wake the runner, which reads _attempt_error after each note.
            if self._inbox is not None:
                self._inbox.put_nowait(Note("disconnected", self.client_id, attempt))

    # -- notes from the host -------------------------------------------------------------------
    async def _on_note(self, note: Note) -> None:
        f = note.fields
        kind = note.kind
        if kind == "qr":
            await self._on_qr(str(f["code"]))
        elif kind == "connected":
            await self._on_connected(f.get("jid"))
        elif kind == "pair":
            await self._on_pair(note)
        elif kind == "message":
            await self._on_message(note)
        elif kind in ("reaction", "edited", "revoked", "poll_vote", "presence"):
            await self.emit(await self._action(kind, f))
        elif kind == "receipt":
            status = RECEIPTS[str(f["status"])]
            for message_id in f["ids"]:
                await self.emit(MessageAck(id=str(message_id), status=status, raw=f))
        elif kind == "chat_read":
            await self.emit(
                ChatRead(
                    chat=str(f["chat"]),
                    chat_lid=f.get("chat_lid"),
                    ids=tuple(str(i) for i in f["ids"]),
                    timestamp=_when(f.get("timestamp")),
                    raw=f,
                )
            )
        elif kind == "call":
            await self.emit(
                CallReceived(
                    id=str(f["id"]),
                    caller=str(f["caller"]),
                    caller_lid=f.get("caller_lid"),
                    timestamp=_when(f.get("timestamp")),
                    video=bool(f.get("video")),
                    group=bool(f.get("group")),
                    raw=f,
                )
            )
        elif kind == "logged_out":
            await self._on_logged_out(str(f.get("reason") or "logged_out"))
        elif kind == "disconnected":
            if self._state is SessionState.CONNECTED:
                # whatsmeow reconnects an established connection by itself; say so meanwhile.
                await self.set_state(SessionState.DISCONNECTED, "connection lost; reconnecting")
        elif kind == "connect_failure":
            # whatsmeow turned its own reconnect off before dispatching this, while
            # connect() goes on blocking: end the attempt; the runner backs off and retries.
            reason = str(f["reason"])
            self.log.warning("%s", reason)
            self._attempt_error = reason
        elif kind == "keepalive_timeout":
            # whatsmeow forces a reconnect after this and emits no Disconnected for it.
            await self.set_state(SessionState.DISCONNECTED, "keep-alive timed out; reconnecting")
        elif kind == "keepalive_restored":
            if self._state is SessionState.DISCONNECTED:
                await self.set_state(SessionState.CONNECTED, None)
        elif kind == "stream_replaced":
            await self._give_up("stream_replaced: this device connected from somewhere else")
        elif kind == "temporary_ban":
            seconds = max(int(f["expire"]), 0)
            expires = datetime.now(UTC) + timedelta(seconds=seconds)
            until = expires.isoformat(timespec="seconds")
            await self._give_up(f"temporary_ban: code {int(f['code'])}, until {until}")
            # Try again once the ban has expired; a stop or start meanwhile cancels this.
            self._waiter = self._spawn(self._after_ban(seconds), "ban")
        elif kind == "client_outdated":
            await self._give_up(
                "client_outdated: WhatsApp refuses this neonize version; upgrade it"
            )

    async def _on_connected(self, jid: dict[str, Any] | None) -> None:
        self._cancel_waiter()
        await self._save_device(jid)
        phone = _phone(jid)
        if phone is None:
            phone = _phone(self._stored_device())
        self._qr_shown = 0
        self._login_started = None
        await self.set_state(SessionState.CONNECTED, None, phone=phone)
        self._settled.set()

    async def _on_pair(self, note: Note) -> None:
        f = note.fields
        if not f.get("ok"):
            self.log.warning("pairing failed: %s", f.get("error"))
            return
        self._cancel_waiter()
        await self._save_device(f.get("jid"))
        self._phone = _phone(f.get("jid"))
        self.log.info("paired; waiting for the connection")
        # WhatsApp now restarts the stream (515) and whatsmeow reconnects; when that fails
        # nothing else would ever move the session out of SCAN_QR.
        self._waiter = self._spawn(self._connect_after_pairing(note.attempt), "after-pair")

    async def _on_message(self, note: Note) -> None:
        f = note.fields
        extras = Extras.from_dict(f.get("extras"))
        if extras.quote is not None and extras.quote.sender == self._phone:
            extras = replace(extras, quote=replace(extras.quote, sender=None))
        if extras.poll is not None:
            await self._remember_poll(str(f["id"]), list(extras.poll.options))
        received = MessageReceived(
            id=str(f["id"]),
            chat=str(f["chat"]),
            sender=str(f["sender"]),
            text=None if f.get("text") is None else str(f["text"]),
            timestamp=_when(f.get("timestamp")),
            media=None,
            chat_lid=f.get("chat_lid"),
            sender_lid=f.get("sender_lid"),
            from_me=bool(f.get("from_me")),
            extras=extras,
            push_name=f.get("push_name"),
            raw=f,
        )
        media = f.get("media")
        if not media:
            await self.emit(received)
            return
        # Off the runner: the session's other events do not wait for a download.
        self._spawn(self._with_media(received, media, note.body), f"media:{received.id}")

    async def _action(
        self, kind: str, f: dict[str, Any]
    ) -> ReactionReceived | MessageEdited | MessageRevoked | PollVoted | PresenceChanged:
        """The event of a note about a message (a reaction, an edit, a deletion, a vote) or
        a contact's presence."""
        who: dict[str, Any] = {
            "chat": str(f["chat"]),
            "sender": str(f["sender"]),
            "chat_lid": f.get("chat_lid"),
            "sender_lid": f.get("sender_lid"),
            "raw": f,
        }
        if kind == "presence":
            last_seen = f.get("last_seen")
            return PresenceChanged(
                **who, state=str(f["state"]), last_seen=_when(last_seen) if last_seen else None
            )
        when = _when(f.get("timestamp"))
        if kind == "poll_vote":
            hashes = tuple(str(h) for h in f["selected_hashes"])
            return PollVoted(
                **who,
                poll_id=str(f["poll_id"]),
                selected=await self._poll_choices(str(f["poll_id"]), hashes),
                selected_hashes=hashes,
                timestamp=when,
            )
        mine = bool(f.get("from_me"))
        target = str(f["target_id"])
        if kind == "reaction":
            return ReactionReceived(
                **who,
                id=str(f["id"]),
                target_id=target,
                emoji=str(f["emoji"]),
                timestamp=when,
                from_me=mine,
            )
        if kind == "edited":
            return MessageEdited(
                **who, target_id=target, text=str(f["text"]), timestamp=when, from_me=mine
            )
        return MessageRevoked(**who, target_id=target, timestamp=when, from_me=mine)

    # -- polls: their options, remembered to name the choices of a vote ----------------------
    async def _load_polls(self) -> dict[str, list[str]]:
        """The remembered polls, oldest first (the file keeps them as a list: its JSON
        objects are written with sorted keys)."""
        if self._polls is None:
            try:
                data = await asyncio.to_thread(read_json, self.polls_path)
            except FileNotFoundError:
                data = []
            except (OSError, ValueError) as exc:
                self.log.warning("unreadable %s (%s); starting afresh", POLLS_FILE, exc)
                data = []
            self._polls = {
                str(entry["id"]): [str(o) for o in entry["options"]]
                for entry in (data if isinstance(data, list) else ())
                if isinstance(entry, dict) and isinstance(entry.get("options"), list)
            }
        return self._polls

    async def _remember_poll(self, poll_id: str, options: list[str]) -> None:
        polls = await self._load_polls()
        polls.pop(poll_id, None)
        polls[poll_id] = options
        for old in list(polls)[: max(len(polls) - POLL_MEMORY, 0)]:
            del polls[old]
        data = [{"id": k, "options": v} for k, v in polls.items()]
        await asyncio.to_thread(atomic_write_json, self.polls_path, data)

    async def _poll_choices(self, poll_id: str, hashes: tuple[str, ...]) -> tuple[str, ...]:
        """The texts of the chosen options when this session knows the poll, else ()."""
        options = (await self._load_polls()).get(poll_id)
        if options is None:
            return ()
        by_hash = {hashlib.sha256(o.encode()).hexdigest(): o for o in options}
        return tuple(by_hash[h] for h in hashes if h in by_hash)

    async def _with_media(
        self, received: MessageReceived, meta: dict[str, Any], raw: bytes
    ) -> None:
        """Emit `received` with its media, downloaded by the host; with the metadata alone
        when the download fails or the file is too large."""
        data: bytes | None = None
        if int(meta["size"]) <= self.max_download_bytes:
            async with self._downloads:
                try:
                    data = (await self._call("download", body=raw, timeout=600.0)).body
                except (HostGone, HostCallFailed, TimeoutError, EngineError) as exc:
                    self.log.warning("could not download the media of %s: %s", received.id, exc)
        content = MediaContent(
            kind=str(meta["kind"]),
            mime=str(meta["mime"]),
            size=len(data) if data is not None else int(meta["size"]),
            filename=meta.get("filename"),
            sha256=meta.get("sha256"),
            data=data,
        )
        await self.emit(replace(received, media=content))

    async def _on_logged_out(self, reason: str) -> None:
        self._cancel_waiter()
        self._logged_out = reason
        await self._stop_client()
        await self._forget_device()
        self._phone = None
        await self.set_state(SessionState.LOGGED_OUT, reason)
        self._settled.set()

    async def _after_ban(self, seconds: float) -> None:
        await asyncio.sleep(seconds + self.ban_margin)
        self.log.info("the temporary ban has expired; starting again")
        await self.start()

    async def _give_up(self, reason: str) -> None:
        self._cancel_waiter()
        self._closing = True
        await self._stop_client()
        await self.set_state(SessionState.FAILED, reason)
        self._settled.set()

    # -- the contract --------------------------------------------------------------------------
    async def _do_start(self) -> None:
        await self._shutdown()
        self._closing = False
        self._logged_out = None
        self._attempt_error = None
        self._qr_shown = 0
        self._login_started = None
        self._settled = asyncio.Event()
        self._inbox = asyncio.Queue()
        self._runner = self._spawn(self._run(), "runner")
        # Return once the first attempt settled (CONNECTED, a QR on show, or DISCONNECTED
        # with the reason), so that start() reports something useful; but never wait long.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.start_wait):
                await self._settled.wait()

    async def _shutdown(self) -> None:
        self._closing = True
        self._cancel_waiter()
        current = asyncio.current_task()
        tasks = [t for t in (self._runner,) if t is not None and t is not current and not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._runner = None
        await self._stop_client()

    async def _do_stop(self) -> None:
        await self._shutdown()

    async def _do_logout(self) -> None:
        if self._host is not None and self._state is SessionState.CONNECTED:
            try:
                await self._call("logout", timeout=30.0)
            except (HostGone, HostCallFailed, TimeoutError) as exc:
                # Forget the device here anyway: the user asked to unlink it, and the phone
                # shows (and can remove) a device that no longer connects.
                self.log.warning("WhatsApp did not take the logout: %s", exc)
        await self._shutdown()
        await self._forget_device()

    async def _do_pair_code(self, phone: str) -> str:
        if self._state not in (SessionState.SCAN_QR, SessionState.PAIRING) or self._host is None:
            raise pairing_needs_qr_phase(self.client_id, self._state)
        digits = normalize_phone(phone).lstrip("+")
        reply = await self._call("pair", phone=digits, timeout=30.0)
        code = str(reply.header["code"]).replace("-", "").strip().upper()
        self._cancel_waiter()
        await self.set_state(SessionState.PAIRING)
        self._waiter = self._spawn(self._pairing_deadline(), "pairing")
        return code

    async def _send(self, label: str | None, op: Any, body: bytes, **args: Any) -> str:
        """One send through the host; `label` names a media kind in errors."""
        if self._state is not SessionState.CONNECTED or self._host is None:
            raise not_connected(self.client_id, self._state)
        try:
            reply = await self._call(op, body=body, timeout=120.0, **args)
        except (HostGone, HostCallFailed, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            if label is None:
                raise EngineError(
                    N_("session {client_id}: WhatsApp did not take the message: {detail}"),
                    hint=N_(
                        "Check the number is on WhatsApp and the session is CONNECTED; retry later."
                    ),
                    client_id=self.client_id,
                    detail=detail[:200],
                ) from exc
            raise EngineError(
                N_("session {client_id}: WhatsApp did not take the {kind}: {detail}"),
                hint=N_(
                    "Check the number is on WhatsApp, the file is a valid {kind} and the "
                    "session is CONNECTED; retry later."
                ),
                client_id=self.client_id,
                kind=label,
                detail=detail[:200],
            ) from exc
        wa_id = str(reply.header.get("id") or "")
        if not wa_id:
            # The base ties WhatsApp's id to the gateway's; without one, receipts would
            # never find this message.
            raise EngineError(
                N_("session {client_id}: WhatsApp took the message but returned no id"),
                hint=N_("Retry later; report this if it happens again."),
                client_id=self.client_id,
            )
        return wa_id

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
        return await self._send(
            None,
            "send_text",
            (preview.thumbnail or b"") if preview is not None else b"",
            to=_target(to),
            text=text,
            quote=_quote(quote),
            mentions=[_target(m) for m in mentions],
            preview=None if preview is None else {**preview.to_dict(), "thumbnail": None},
        )

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
        return await self._send(
            kind,
            "send_media",
            data,
            to=_target(to),
            kind=kind,
            mime=mime,
            filename=filename,
            caption=caption,
            quote=_quote(quote),
        )

    async def _do_send_location(
        self, *, message_id: str, to: str, location: Location, quote: Quote | None
    ) -> str:
        return await self._send(
            "location",
            "send_location",
            b"",
            to=_target(to),
            location=location.to_dict(),
            quote=_quote(quote),
        )

    async def _do_send_contacts(
        self, *, message_id: str, to: str, contacts: tuple[ContactCard, ...], quote: Quote | None
    ) -> str:
        return await self._send(
            "contact card",
            "send_contacts",
            b"",
            to=_target(to),
            contacts=[c.to_dict() for c in contacts],
            quote=_quote(quote),
        )

    async def _do_send_poll(self, *, message_id: str, to: str, poll: Poll) -> str:
        wa_id = await self._send("poll", "send_poll", b"", to=_target(to), poll=poll.to_dict())
        await self._remember_poll(wa_id, list(poll.options))
        return wa_id

    async def _act(self, op: Any, **args: Any) -> str:
        """A reaction, an edit or a deletion: sent like a message, WhatsApp's id back."""
        return await self._send(None, op, b"", **args)

    async def _do_react(self, *, chat: str, target: MessageRef, emoji: str) -> str:
        return await self._act("react", chat=_target(chat), target=_ref(target), emoji=emoji)

    async def _do_edit(self, *, chat: str, target_id: str, text: str) -> str:
        return await self._act("edit", chat=_target(chat), target_id=target_id, text=text)

    async def _do_revoke(self, *, chat: str, target: MessageRef) -> str:
        return await self._act("revoke", chat=_target(chat), target=_ref(target))

    async def _do_mark_read(self, *, chat: str, ids: tuple[str, ...], sender: str | None) -> None:
        if self._state is not SessionState.CONNECTED or self._host is None:
            raise not_connected(self.client_id, self._state)
        await self._call(
            "mark_read",
            chat=_target(chat),
            ids=list(ids),
            sender=_target(sender) if sender else None,
            timeout=30.0,
        )

    async def _do_set_presence(self, *, chat: str, state: str) -> None:
        if self._state is not SessionState.CONNECTED or self._host is None:
            raise not_connected(self.client_id, self._state)
        await self._call("presence", chat=_target(chat), state=state, timeout=30.0)

    async def _ask(self, op: Any, **args: Any) -> Any:
        """A question to WhatsApp through the host (no message sent): its reply."""
        if self._state is not SessionState.CONNECTED or self._host is None:
            raise not_connected(self.client_id, self._state)
        return await self._call(op, timeout=60.0, **args)

    async def _do_check_numbers(self, phones: tuple[str, ...]) -> list[NumberCheck]:
        reply = await self._ask("check_numbers", phones=[normalize_phone(p) for p in phones])
        return [NumberCheck.from_dict(c) for c in reply.header["checks"]]

    async def _do_contact_profile(self, address: str) -> ContactProfile:
        reply = await self._ask("contact_profile", address=_target(address))
        return ContactProfile.from_dict(reply.header["profile"])

    async def _do_set_blocked(self, address: str, blocked: bool) -> None:
        await self._ask("set_blocked", address=_target(address), blocked=blocked)

    async def _do_address_book(self) -> list[AddressBookEntry]:
        reply = await self._ask("address_book")
        return [AddressBookEntry.from_dict(e) for e in reply.header["entries"]]

    async def _do_reject_call(self, *, call_id: str, caller: str) -> None:
        await self._ask("reject_call", call_id=call_id, caller=_target(caller))

    def _do_has_credentials(self) -> bool:
        # The device file is written once whatsmeow's store holds the device; a stale one
        # is caught before the next client is made (_check_device).
        if self.config.store is None and not self.store_path.is_file():
            return False
        return self._stored_device() is not None or (
            self.config.store is None and self.store_path.is_file() and _legacy(self.store_path)
        )


def _legacy(path: Path) -> bool:
    """A SQLite store from before the device file: linked if it has a device row. (Read on
    the loop once per such session, until its next start writes the device file.)"""
    return bool(store._sqlite_devices(path))


def _phone(jid: dict[str, Any] | None) -> str | None:
    if not jid:
        return None
    user = str(jid.get("user") or "")
    if not user.isdigit():
        return None
    try:
        return normalize_phone("+" + user)
    except Exception:
        return None


def _target(to: str) -> str:
    """`to` as the host expects it: E.164, or a LID as `digits@lid`."""
    if to.endswith("@lid"):
        return to
    return normalize_phone(to)


def _quote(quote: Quote | None) -> dict[str, Any] | None:
    """A quote for the host: its author as a send target (None: this number)."""
    if quote is None:
        return None
    return {**quote.to_dict(), "sender": _target(quote.sender) if quote.sender else None}


def _ref(ref: MessageRef) -> dict[str, Any]:
    return {**ref.to_dict(), "sender": _target(ref.sender) if ref.sender else None}


def _when(timestamp: Any) -> datetime:
    """A note's timestamp (seconds) as a datetime; now when it has none."""
    return datetime.fromtimestamp(float(timestamp), UTC) if timestamp else datetime.now(UTC)
