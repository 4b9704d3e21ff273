"""The bridge between a session and Go: the session's own connect() thread, the short
blocking calls on the worker's Go-call threads, the readers/writer lock over Go's maps,
and the hop back to the event loop for everything Go reports.

* neonize's `connect()` blocks for the life of the session, so every session owns ONE
  dedicated thread (`zapgate-wa:{client_id}`) that calls it; never the loop's default
  executor, which a few dozen sessions would exhaust.
* Go calls our handlers on its own threads. A handler only hands the (already parsed)
  protobuf to the loop with `loop.call_soon_threadsafe`, as a `Signal` on the session's
  inbox; the engine's runner turns them into engine events, so every state change
  happens on the event loop, in order.
* The Go side keeps its clients in maps without locks; a concurrent write (a session
  starting or stopping) next to any other access crashes the whole process. `GO_MAPS`, a
  process-wide readers/writer lock, makes starts and stops exclusive (and so one at a
  time) while the short calls (send, pair, logout) share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from neonize._binder import ProxySettings
from neonize.client import NewClient
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

from zapgate.engines.backends import WhatsmeowRuntime

T = TypeVar("T")

# The whatsmeow events a session subscribes to (the engine handles each of them).
EVENTS: tuple[type, ...] = (
    ConnectedEv,
    PairStatusEv,
    MessageEv,
    ReceiptEv,
    LoggedOutEv,
    DisconnectedEv,
    ConnectFailureEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    StreamReplacedEv,
    TemporaryBanEv,
    ClientOutdatedEv,
)


class GoMaps:
    """Readers/writer lock over neonize's unlocked Go maps. Writers (a session's start, a
    stop) are exclusive and preferred; a writer's hold may be released from any thread
    (the first Go callback of a starting session releases it)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    def hold(self) -> Hold:
        with self._cond:
            self._waiting_writers += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
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


# One per process, like the Go maps it guards: every worker and every engine of this
# process shares it.
GO_MAPS = GoMaps()


@dataclass(frozen=True, slots=True)
class Signal:
    """Something a Go thread handed to the loop. `kind` is qr/event/ended."""

    kind: str
    attempt: int
    payload: Any = None
    event: type | None = None


ClientFactory = Callable[..., Any]


def new_client(*, store: str, uuid: str, jid: Any, new_device: bool) -> Any:
    client = NewClient(store, jid=jid, uuid=uuid, new_device=new_device)
    # NewClient names the Go session after jid.User when given a jid; keep one Go key per
    # session (two sessions of one phone must not share it).
    client.uuid = uuid.encode()
    return client


def post(loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[Signal], s: Signal) -> None:
    """From any thread: hand `s` to the session's runner on the loop."""
    # RuntimeError: the loop is closed, the worker is gone and nobody is listening.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(inbox.put_nowait, s)


class SessionBridge:
    """One session's way into Go and back: its connect() thread and its short calls."""

    def __init__(self, client_id: str, runtime: WhatsmeowRuntime, log: logging.Logger) -> None:
        self.client_id = client_id
        self.runtime = runtime
        self.log = log

    async def call(self, fn: Callable[[], T]) -> T:
        """Run a short blocking call into Go on the worker's Go-call threads."""
        return await asyncio.get_running_loop().run_in_executor(self.runtime.calls, fn)

    def connect(
        self,
        client: Any,
        *,
        inbox: asyncio.Queue[Signal],
        attempt: int,
        may_start: Callable[[], bool],
        is_current: Callable[[], bool],
        hold_cap: float,
    ) -> threading.Thread:
        """Register the handlers (before connect: Go learns the subscribed events at connect
        time) and run `client.connect()` on the session's own thread, exclusive on the Go
        maps until Go's first callback (or `hold_cap` seconds). What Go reports reaches
        `inbox` as Signals of `attempt`, the last one `ended` with connect()'s error.
        `may_start()` is asked once the maps are held (stop() may have won the race for
        them), `is_current()` when connect() returned."""
        loop = asyncio.get_running_loop()
        hold_box: list[Hold] = []

        def release_hold() -> None:
            if hold_box:
                hold_box[0].release()

        def on_qr(_: Any, code: bytes) -> None:
            release_hold()
            post(loop, inbox, Signal("qr", attempt, code.decode(errors="replace")))

        def forward(ev_type: type) -> Callable[[Any, Any], None]:
            def handler(_: Any, message: Any) -> None:
                release_hold()
                post(loop, inbox, Signal("event", attempt, message, ev_type))

            return handler

        client.event.qr(on_qr)
        for ev_type in EVENTS:
            client.event(ev_type)(forward(ev_type))
        proxy_url = self.runtime.config.proxy
        proxy = ProxySettings(proxy_address=proxy_url) if proxy_url else None

        def run() -> None:
            error: str | None = None
            hold = GO_MAPS.hold()
            hold_box.append(hold)
            try:
                if not may_start():
                    return  # stop() won the race for the Go maps: do not start at all
                client.connect(proxy)
            except BaseException as exc:  # reported to the loop, whatever it is
                error = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
            finally:
                hold.release()
                # connect() returned: free the Go side's entry for this session (it keeps a
                # whatsmeow client and the store open otherwise).
                # Only while this attempt is current: the Go key is the client id, shared by
                # every attempt, and a newer attempt's session must not be stopped by ours
                # (stop() already stopped this one when it moved the attempt on).
                with GO_MAPS.exclusive(), contextlib.suppress(Exception):
                    if is_current():
                        client.stop()
                finalizer = getattr(client, "_stop_finalizer", None)
                if finalizer is not None:
                    finalizer.detach()  # it would call Go's Stop again, unlocked, at GC
                post(loop, inbox, Signal("ended", attempt, error))

        thread = threading.Thread(target=run, name=f"zapgate-wa:{self.client_id}", daemon=True)
        thread.start()
        loop.call_later(hold_cap, release_hold)
        return thread

    async def disconnect(self, client: Any, thread: threading.Thread | None, join: float) -> None:
        """Cancel `client`'s connection and wait (at most `join` seconds) for its thread."""
        if client is not None:

            def stop() -> None:
                with GO_MAPS.exclusive():
                    client.stop()

            with contextlib.suppress(Exception):
                await self.call(stop)
        if thread is not None and thread.is_alive():
            await self.call(lambda: thread.join(join))
            if thread.is_alive():
                self.log.warning("the whatsmeow thread did not end within %.0fs", join)
