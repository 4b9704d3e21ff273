"""Inside a host process (host.py): how one session's neonize client meets Go.

* neonize's `connect()` blocks for the life of the connection, so every session owns ONE
  thread (`zapgate-wa:{client_id}`) that calls it.
* Go calls our handlers on its own threads; a handler turns the protobuf into a note
  (convert.py) and hands it to `post`, which writes it to the worker.
* The Go side keeps its clients in maps without locks; a write (a client starting or
  stopping) next to any other access crashes the whole process. `GO_MAPS`, a readers/
  writer lock, makes starts and stops exclusive while the calls (send, pair, download)
  share it. A call reads the map only as it begins, so a reader keeps writers out for at
  most `READ_HOLD` seconds: a long download or upload never holds a start (and every
  call queued behind that start) for its whole length.
* Unpaired sessions each have a host of their own (whatsmeow's QR loop cannot be
  stopped: the worker kills that process), so the lock matters only in a shared host,
  whose sessions are all paired.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from neonize._binder import ProxySettings
from neonize.client import NewClient

from zapgate.engines.whatsmeow import convert
from zapgate.engines.whatsmeow.rpc import Note, NoteKind

T = TypeVar("T")
logger = logging.getLogger(__name__)

# How long a call keeps its share of the Go maps (it reads them only as it begins).
READ_HOLD = 1.0
# How long a starting client may keep the maps exclusive if Go reports nothing.
START_HOLD_CAP = 10.0


class GoMaps:
    """Readers/writer lock over neonize's unlocked Go maps. Writers are exclusive and
    preferred; a writer's hold may be released from any thread (the first Go callback of
    a starting client releases it). A reader (a call into Go) keeps writers out only for
    its first `hold` seconds: Go reads its map as a call begins, so a writer does not wait
    for the rest of a long transfer (and no timer thread is needed to say so)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers: dict[int, float] = {}  # reader token -> when it stops counting
        self._tokens = itertools.count()
        self._writer = False
        self._waiting_writers = 0

    def _readers_wait(self) -> float | None:
        """None when no reader keeps writers out, else how long until the last one stops."""
        now = time.monotonic()
        left = [until - now for until in self._readers.values() if until > now]
        return max(left) if left else None

    @contextlib.contextmanager
    def shared(self, hold: float = READ_HOLD) -> Iterator[None]:
        """A share of the maps for one call into Go, counting for `hold` seconds."""
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            token = next(self._tokens)
            self._readers[token] = time.monotonic() + hold
        try:
            yield
        finally:
            with self._cond:
                del self._readers[token]
                self._cond.notify_all()

    def call(self, fn: Callable[[], T], hold: float = READ_HOLD) -> T:
        """Run `fn` (one call into Go) with a share of the maps."""
        with self.shared(hold):
            return fn()

    def hold(self) -> Hold:
        with self._cond:
            self._waiting_writers += 1
            try:
                while True:
                    wait = None if self._writer else self._readers_wait()
                    if not self._writer and wait is None:
                        break
                    self._cond.wait(wait)
            finally:
                self._waiting_writers -= 1
            self._writer = True
        return Hold(self)

    def _release(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        hold = self.hold()
        try:
            yield
        finally:
            hold.release()


class Hold:
    """One exclusive hold; `release()` is idempotent and thread-safe."""

    def __init__(self, owner: GoMaps) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._owner._release()


# One per process, like the Go maps it guards.
GO_MAPS = GoMaps()

ClientFactory = Callable[..., Any]
Post = Callable[[Note], None]


# How many ringing calls a connection remembers the creator JID of (to reject them).
CALL_MEMORY = 64


def new_client(*, store: str, uuid: str, jid: Any, new_device: bool) -> Any:
    return NewClient(store, jid=jid, uuid=uuid, new_device=new_device)


def bind(client: Any, uuid: str) -> None:
    """Give `client` one Go key per session. NewClient names the Go session after
    jid.User when given a jid (two sessions of one phone must not share it), and its
    contact and chat-settings stores keep the key they were made with: a store call
    under a key Go has no client for dereferences nil and kills the process."""
    key = uuid.encode()
    client.uuid = key
    for name in ("contact", "chat_settings"):
        store = getattr(client, name, None)
        if store is not None:
            store.uuid = key


class Connection:
    """One connection attempt of one session: its client, its connect() thread, and the
    handlers that turn what Go reports into notes of this attempt."""

    def __init__(
        self,
        client: Any,
        *,
        client_id: str,
        attempt: int,
        post: Post,
        calls: Callable[[Callable[[], None]], None],
    ) -> None:
        self.client = client
        self.client_id = client_id
        self.attempt = attempt
        self._post = post
        self._calls = calls  # runs a function on one of the host's call threads
        self._hold: Hold | None = None
        self.thread: threading.Thread | None = None
        self.stopped = False
        # The chats whose presence this client subscribed to (after marking itself
        # online); WhatsApp forgets both on a new connection (every Connected event).
        self.presence_subscribed: set[str] = set()
        # Ringing calls, newest last: call id -> the creator's JID as the offer named it
        # (what whatsmeow's RejectCall must be given).
        self._ringing: dict[str, Any] = {}
        self._ringing_lock = threading.Lock()

    def note(self, kind: NoteKind, body: bytes = b"", **fields: Any) -> None:
        self._post(Note(kind, self.client_id, self.attempt, fields, body))

    def _release_hold(self) -> None:
        if self._hold is not None:
            self._hold.release()

    # -- handlers: on Go's threads -------------------------------------------------------------
    def _on_qr(self, _: Any, code: bytes) -> None:
        self._release_hold()
        self.note("qr", code=code.decode(errors="replace"))

    def _on_event(self, ev_type: type, ev: Any) -> None:
        self._release_hold()
        try:
            converted = convert.note_of(self.client, ev_type, ev)
        except Exception as exc:  # a malformed event must not end Go's callback thread
            logger.warning("%s: ignored a malformed %s: %r", self.client_id, ev_type, exc)
            return
        if converted is None:
            return
        kind, fields, body = converted
        if kind == "call":
            self._remember_call(str(fields["id"]), ev.basicCallMeta.callCreator)
        if kind == "connected":
            self.presence_subscribed.clear()
            # Who we are, asked of Go off its callback thread.
            self._calls(lambda: self.note("connected", jid=self._me()))
            return
        self.note(kind, body, **fields)

    def _remember_call(self, call_id: str, creator: Any) -> None:
        with self._ringing_lock:
            self._ringing.pop(call_id, None)
            self._ringing[call_id] = creator
            for old in list(self._ringing)[: max(len(self._ringing) - CALL_MEMORY, 0)]:
                del self._ringing[old]

    def call_creator(self, call_id: str) -> Any:
        """The creator JID of a call this connection saw ringing, None if it saw none."""
        with self._ringing_lock:
            return self._ringing.get(call_id)

    def _me(self) -> dict[str, Any] | None:
        try:
            device = GO_MAPS.call(self.client.get_me)
        except Exception as exc:
            logger.warning("%s: could not read this device's JID: %s", self.client_id, exc)
            return None
        return convert.jid_fields(device.JID) if device.HasField("JID") else None

    # -- the connect() thread ------------------------------------------------------------------
    def start(self, proxy: str | None) -> None:
        """Register the handlers (Go learns the subscribed events at connect time) and run
        connect() on this session's thread, exclusive on the Go maps until Go's first
        callback (or START_HOLD_CAP seconds)."""
        self.client.event.qr(self._on_qr)
        for ev_type in convert.EVENTS:
            self.client.event(ev_type)(lambda _, ev, t=ev_type: self._on_event(t, ev))
        settings = ProxySettings(proxy_address=proxy) if proxy else None

        def run() -> None:
            error: str | None = None
            self._hold = GO_MAPS.hold()
            cap = threading.Timer(START_HOLD_CAP, self._release_hold)
            cap.daemon = True
            cap.start()
            try:
                if not self.stopped:
                    self.client.connect(settings)
            except BaseException as exc:  # reported to the worker, whatever it is
                error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            finally:
                cap.cancel()
                self._release_hold()
                if not self.stopped:
                    # connect() returned by itself: free the Go side's entry (it keeps a
                    # whatsmeow client and the store open otherwise).
                    with GO_MAPS.exclusive(), contextlib.suppress(Exception):
                        self.client.stop()
                finalizer = getattr(self.client, "_stop_finalizer", None)
                if finalizer is not None:
                    finalizer.detach()  # it would call Go's Stop again, unlocked, at GC
                self.note("ended", error=error)

        self.thread = threading.Thread(target=run, name=f"zapgate-wa:{self.client_id}", daemon=True)
        self.thread.start()

    def stop(self, join: float) -> bool:
        """Cancel the connection; True when connect() returned within `join` seconds."""
        self.stopped = True
        with GO_MAPS.exclusive(), contextlib.suppress(Exception):
            self.client.stop()
        thread = self.thread
        if thread is None:
            return True
        deadline = time.monotonic() + join
        thread.join(max(deadline - time.monotonic(), 0.0))
        return not thread.is_alive()
