"""The whatsmeow engine: one real WhatsApp multi-device session through neonize (the Python
binding of Go's whatsmeow). This package is the only place that imports neonize; how a
session's threads meet Go and the loop is bridge.py's story.

* Before every connection attempt the engine checks, from the loop, that the host it must
  dial (WhatsApp's, or the configured proxy) accepts TCP connections. Without a network the
  session goes to DISCONNECTED naming the host and retries with capped exponential backoff
  and jitter, and neonize is not called at all: every neonize connect opens an auth-state
  store that the Go side never closes, so a retry loop through it would leak one file (or
  one PostgreSQL connection) per attempt.
* whatsmeow does not tell Python when a QR expires: our own timer stops the session with
  reason `qr_timeout` after `options.qr_max_rotations` codes, like the sim engine.

See /work/shared/ENGINES.md for the facts behind each choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from neonize.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto.Neonize_pb2 import JID, PairStatus
from neonize.utils.jid import build_jid

from zapgate.aio import BackgroundTasks
from zapgate.domain.events import MediaContent, MessageAck, MessageReceived, QrUpdated
from zapgate.domain.ids import normalize_phone
from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState
from zapgate.engines.backends import WhatsmeowRuntime
from zapgate.engines.base import Emit, Engine, EngineOptions
from zapgate.engines.whatsmeow import convert, media
from zapgate.engines.whatsmeow.bridge import (
    GO_MAPS,
    ClientFactory,
    SessionBridge,
    Signal,
    new_client,
)
from zapgate.errors import EngineError, not_connected, pairing_needs_qr_phase
from zapgate.i18n import N_
from zapgate.jsonfile import atomic_write_json, read_json

# whatsmeow closes the login websocket this long after the first QR code, whether a
# pairing code was asked for or not (qrchan.go); a pairing deadline past it waits for nothing.
LOGIN_WINDOW = 160.0
# Seconds past a temporary ban's expiry before connecting again.
BAN_MARGIN = 30.0
STORE_FILE = "whatsmeow.db"
DEVICE_FILE = "whatsmeow-device.json"


class WhatsmeowEngine(Engine):
    name: ClassVar[str] = "whatsmeow"
    capabilities: ClassVar[frozenset[str]] = frozenset({"send_media", "pair_code"})

    # Tests swap these for a fake network (tests/contract/whatsmeow_fake.py).
    client_factory: ClientFactory = staticmethod(new_client)
    probe_timeout: float = 5.0
    join_timeout: float = 5.0
    # How long a starting session may keep the Go maps exclusive if no callback comes.
    start_hold_cap: float = 10.0
    # Inbound media larger than this is reported without its bytes (WhatsApp's document
    # ceiling).
    max_download_bytes: int = 100 * 1024 * 1024

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
        self.config = runtime.config
        self._bridge = SessionBridge(client_id, runtime, self.log)
        self.reconnect_base = self.config.reconnect_base
        self.reconnect_cap = self.config.reconnect_cap
        self.max_failures = self.config.max_failures
        self.start_wait = self.config.start_wait
        # None disables the reachability check (the fake network of the tests).
        self.probe_target: tuple[str, int] | None = self._default_probe_target()
        self._tasks = BackgroundTasks()
        self._runner: asyncio.Task[None] | None = None
        self._waiter: asyncio.Task[None] | None = None
        self._inbox: asyncio.Queue[Signal] | None = None
        self._client: Any = None
        self._thread: threading.Thread | None = None
        self._attempt = 0
        self._closing = False
        self._logged_out: str | None = None
        self._qr_shown = 0
        self._login_started: float | None = None  # monotonic time of the first QR
        # Set by an event that ends the current connection attempt (a ConnectFailure,
        # after which whatsmeow does not reconnect by itself): the runner backs off.
        self._attempt_error: str | None = None
        self.login_window = LOGIN_WINDOW
        self.ban_margin = BAN_MARGIN
        self._settled = asyncio.Event()

    # -- paths and stored credentials ----------------------------------------------------------
    @property
    def store_path(self) -> Path:
        return self.session_dir / STORE_FILE

    @property
    def device_path(self) -> Path:
        return self.session_dir / DEVICE_FILE

    @property
    def store(self) -> str:
        return self.config.store or str(self.store_path)

    def _default_probe_target(self) -> tuple[str, int] | None:
        if self.config.proxy:
            parts = urlsplit(self.config.proxy)
            if parts.hostname:
                default = 1080 if parts.scheme.startswith("socks") else 8080
                return parts.hostname, parts.port or default
        return convert.WHATSAPP_HOST, convert.WHATSAPP_PORT

    def _stored_device(self) -> dict[str, Any] | None:
        try:
            data = read_json(self.device_path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.log.warning("unreadable %s (%s)", DEVICE_FILE, exc)
            return None
        return data if isinstance(data, dict) and data.get("user") else None

    def _sqlite_has_device(self) -> bool:
        if not self.store_path.is_file():
            return False
        try:
            uri = f"file:{self.store_path}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as db:
                row = db.execute("SELECT jid FROM whatsmeow_device LIMIT 1").fetchone()
        except sqlite3.Error:
            return False  # no schema yet: never paired
        return row is not None

    def _resume_jid(self) -> Any:
        # A shared (PostgreSQL) store holds many devices: say which one is ours, or a new
        # client would resume the first stored device (ENGINES.md).
        device = self._stored_device()
        if self.config.store is None or device is None:
            return None
        return JID(
            User=str(device["user"]),
            Device=int(device.get("device", 0)),
            Server=str(device.get("server", "s.whatsapp.net")),
        )

    def _forget_device(self) -> None:
        self.device_path.unlink(missing_ok=True)
        if self.config.store is None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.store_path}{suffix}").unlink(missing_ok=True)

    # -- tasks and threads ---------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = self._tasks.create(coro, name=f"session:{self.client_id}:{what}")
        return task

    def _launch(self) -> None:
        """Build a client and run its connect() on the session's own thread."""
        inbox = self._inbox
        assert inbox is not None
        self._attempt += 1
        attempt = self._attempt
        device = self._stored_device()
        client = self.client_factory(
            store=self.store,
            uuid=self.client_id,
            jid=self._resume_jid(),
            new_device=self.config.store is not None and device is None,
        )
        self._client = client
        self._thread = self._bridge.connect(
            client,
            inbox=inbox,
            attempt=attempt,
            may_start=lambda: not self._closing and attempt == self._attempt,
            is_current=lambda: attempt == self._attempt,
            hold_cap=self.start_hold_cap,
        )

    async def _stop_client(self) -> None:
        """Cancel the current connection and wait (bounded) for its thread to end."""
        client, thread = self._client, self._thread
        self._attempt += 1  # a thread still waiting for the Go maps must not connect
        self._client, self._thread = None, None
        await self._bridge.disconnect(client, thread, self.join_timeout)

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
            reason = await self._probe()
            if reason is None:
                self._launch()
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
            await self._dropped(reason)
            if self.max_failures and failures >= self.max_failures:
                self.log.warning("giving up after %d failed connections: %s", failures, reason)
                await self.set_state(SessionState.FAILED, reason)
                self._runner = None
                return
            await asyncio.sleep(self._backoff(failures))

    async def _drain(self, inbox: asyncio.Queue[Signal]) -> str | None:
        """Handle signals of the current attempt until its connect() returns; returns its
        error, or None when it ended without one."""
        while True:
            signal = await inbox.get()
            if signal.attempt != self._attempt:
                continue  # left over from an attempt that was already stopped
            if signal.kind == "ended":
                error = signal.payload
                if not error:
                    return None
                return (
                    convert.dial_reason(error)
                    if "dial" in error
                    else f"connection failed: {error}"[:300]
                )
            try:
                if signal.kind == "qr":
                    await self._on_qr(signal.payload)
                else:
                    await self._on_event(signal.event, signal.payload)
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                self.log.warning("ignored a malformed %s: %r", signal.kind, exc)
            if self._logged_out is not None or self._closing:
                return None
            if self._attempt_error is not None:
                error, self._attempt_error = self._attempt_error, None
                return error

    async def _dropped(self, reason: str) -> None:
        self._cancel_waiter()
        if reason != self._reason or self._state is not SessionState.DISCONNECTED:
            self.log.warning("disconnected: %s", reason)
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

    # -- events from whatsmeow -----------------------------------------------------------------
    async def _on_event(self, ev_type: type | None, ev: Any) -> None:
        if ev_type is ConnectedEv:
            await self._on_connected()
        elif ev_type is PairStatusEv:
            await self._on_pair_status(ev)
        elif ev_type is MessageEv:
            await self._on_message(ev)
        elif ev_type is ReceiptEv:
            status = convert.RECEIPTS.get(int(ev.Type))
            if status is not None:
                for message_id in ev.MessageIDs:
                    await self.emit(MessageAck(id=str(message_id), status=status, raw=ev))
        elif ev_type is LoggedOutEv:
            await self._on_logged_out(convert.logout_reason(ev))
        elif ev_type is DisconnectedEv:
            # whatsmeow reconnects an established connection by itself; say so meanwhile.
            await self.set_state(SessionState.DISCONNECTED, "connection lost; reconnecting")
        elif ev_type is ConnectFailureEv:
            # whatsmeow turned its own reconnect off before dispatching this, while
            # connect() goes on blocking: end the attempt; the runner backs off and retries.
            reason = convert.connect_failure_reason(ev)
            self.log.warning("%s", reason)
            self._attempt_error = reason
        elif ev_type is KeepAliveTimeoutEv:
            # whatsmeow forces a reconnect after this and emits no Disconnected for it.
            await self.set_state(SessionState.DISCONNECTED, "keep-alive timed out; reconnecting")
        elif ev_type is KeepAliveRestoredEv:
            if self._state is SessionState.DISCONNECTED:
                await self.set_state(SessionState.CONNECTED, None)
        elif ev_type is StreamReplacedEv:
            await self._give_up("stream_replaced: this device connected from somewhere else")
        elif ev_type is TemporaryBanEv:
            expires = datetime.now(UTC) + timedelta(seconds=max(int(ev.Expire), 0))
            await self._give_up(
                f"temporary_ban: code {int(ev.Code)}, until {expires.isoformat(timespec='seconds')}"
            )
            # Try again once the ban has expired; a stop or start meanwhile cancels this.
            self._waiter = self._spawn(self._after_ban(max(int(ev.Expire), 0)), "ban")
        elif ev_type is ClientOutdatedEv:
            await self._give_up(
                "client_outdated: WhatsApp refuses this neonize version; upgrade it"
            )

    async def _on_connected(self) -> None:
        self._cancel_waiter()
        me = getattr(self._client, "me", None)
        phone = convert.phone_of(me.JID) if me is not None and me.HasField("JID") else None
        if me is not None and me.HasField("JID") and me.JID.User:
            self._save_device(me.JID)
        if phone is None:
            stored = self._stored_device()
            phone = convert.phone_of(JID(User=str(stored["user"]))) if stored else None
        self._qr_shown = 0
        self._login_started = None
        await self.set_state(SessionState.CONNECTED, None, phone=phone)
        self._settled.set()

    def _save_device(self, jid: Any) -> None:
        data = {
            "user": jid.User,
            "device": int(jid.Device),
            "server": jid.Server or "s.whatsapp.net",
        }
        if self._stored_device() != data:
            atomic_write_json(self.device_path, data, mode=0o600)

    async def _on_pair_status(self, ev: Any) -> None:
        if ev.Status == PairStatus.SUCCESS:
            self._cancel_waiter()
            self._save_device(ev.ID)
            self._phone = convert.phone_of(ev.ID)
            self.log.info("paired; waiting for the connection")
        else:
            self.log.warning("pairing failed: %s", ev.Error)

    async def _on_message(self, ev: Any) -> None:
        source = ev.Info.MessageSource
        if source.IsFromMe:
            return  # our own messages, echoed from the phone or another linked device
        if convert.is_status_or_newsletter(source.Chat):
            return  # contacts' stories and channels: never downloaded, never stored
        message = convert.unwrap(ev.Message)
        if not convert.has_content(message):
            # A sender-key-only part of a group stanza or a protocol message: emitting it
            # would store a content-less row under the id the real content arrives with.
            self.log.debug("message %s: a part without content; not delivered", ev.Info.ID)
            return
        await self.emit(
            MessageReceived(
                id=str(ev.Info.ID),
                chat=convert.address(source.Chat),
                sender=convert.sender(source),
                text=convert.text(message),
                timestamp=convert.timestamp(int(ev.Info.Timestamp)),
                media=await self._inbound_media(str(ev.Info.ID), message),
                raw=ev,
            )
        )

    async def _inbound_media(self, message_id: str, message: Any) -> MediaContent | None:
        """The media of an inbound message, downloaded (and decrypted) by whatsmeow; the
        metadata alone when the download fails or the file is too large."""
        name = media.field(message)
        if name is None:
            return None
        data: bytes | None = None
        client = self._client
        if client is not None and int(getattr(message, name).fileLength) <= self.max_download_bytes:

            def download() -> bytes:
                with GO_MAPS.shared():
                    return media.download(client, message)

            try:
                data = await self._bridge.call(download)
            except Exception as exc:
                self.log.warning("could not download the media of %s: %s", message_id, exc)
        return media.content(name, message, data)

    async def _on_logged_out(self, reason: str) -> None:
        self._cancel_waiter()
        self._logged_out = reason
        await self._stop_client()
        self._forget_device()
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
        client = self._client
        if client is not None and self._state is SessionState.CONNECTED:

            def logout() -> None:
                with GO_MAPS.shared():
                    client.logout()

            try:
                await self._bridge.call(logout)
            except Exception as exc:
                # Forget the device here anyway: the user asked to unlink it, and the phone
                # shows (and can remove) a device that no longer connects.
                self.log.warning("WhatsApp did not take the logout: %s", exc)
        await self._shutdown()
        self._forget_device()

    async def _do_pair_code(self, phone: str) -> str:
        if self._state not in (SessionState.SCAN_QR, SessionState.PAIRING) or self._client is None:
            raise pairing_needs_qr_phase(self.client_id, self._state)
        client = self._client
        digits = normalize_phone(phone).lstrip("+")

        def pair() -> str:
            with GO_MAPS.shared():
                return str(client.PairPhone(digits, show_push_notification=True))

        code = (await self._bridge.call(pair)).replace("-", "").strip().upper()
        self._cancel_waiter()
        await self.set_state(SessionState.PAIRING)
        self._waiter = self._spawn(self._pairing_deadline(), "pairing")
        return code

    async def _do_send_text(self, *, message_id: str, to: str, text: str) -> str:
        client = self._client
        if self._state is not SessionState.CONNECTED or client is None:
            raise not_connected(self.client_id, self._state)
        jid = build_jid(normalize_phone(to).lstrip("+"))

        def send() -> Any:
            with GO_MAPS.shared():
                return client.send_message(jid, text)

        try:
            response = await self._bridge.call(send)
        except Exception as exc:
            raise EngineError(
                N_("session {client_id}: WhatsApp did not take the message: {detail}"),
                hint=N_(
                    "Check the number is on WhatsApp and the session is CONNECTED; retry later."
                ),
                client_id=self.client_id,
                detail=str(exc)[:200],
            ) from exc
        wa_id = str(response.ID) or message_id
        await self.emit(MessageAck(id=wa_id, status=MessageStatus.SENT, raw=response))
        return wa_id

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
    ) -> str:
        client = self._client
        if self._state is not SessionState.CONNECTED or client is None:
            raise not_connected(self.client_id, self._state)
        jid = build_jid(normalize_phone(to).lstrip("+"))

        def send() -> Any:
            with GO_MAPS.shared():
                return media.send(
                    client,
                    jid,
                    kind=kind,
                    data=data,
                    mime=mime,
                    filename=filename,
                    caption=caption,
                )

        try:
            response = await self._bridge.call(send)
        except Exception as exc:
            raise EngineError(
                N_("session {client_id}: WhatsApp did not take the {kind}: {detail}"),
                hint=N_(
                    "Check the number is on WhatsApp, the file is a valid {kind} and the "
                    "session is CONNECTED; retry later."
                ),
                client_id=self.client_id,
                kind=kind,
                detail=str(exc)[:200],
            ) from exc
        wa_id = str(response.ID) or message_id
        await self.emit(MessageAck(id=wa_id, status=MessageStatus.SENT, raw=response))
        return wa_id

    def _do_has_credentials(self) -> bool:
        if self.config.store is None:
            return self._sqlite_has_device()
        return self._stored_device() is not None
