"""The worker's side of its whatsmeow hosts (host.py): starting them, talking to them
(rpc.py), noticing when one dies, and deciding which sessions share one.

Placement (measured: a host with neonize loaded is about 70 MB of private memory before
its first client, see docs/architecture.md):

* a session that must show a QR, or whose last attempt failed, gets a host of its own
  ("solo"): whatsmeow's QR loop cannot be stopped, and every failed connect leaks an
  auth-store handle; killing the process is what ends both;
* a linked session resuming joins a shared host with room (`sessions_per_host`).

A host that dies (killed, crashed in Go) is noticed when its socket closes: every session
it ran gets an `ended` note naming the exit, so its engine backs off and starts again in
a new host. An empty host is ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from zapgate.engines.whatsmeow import rpc
from zapgate.engines.whatsmeow.rpc import Frame, Note, Op

logger = logging.getLogger(__name__)

NoteSink = Callable[[Note], None]


class HostGone(Exception):
    """The host process ended before it answered."""


class HostCallFailed(Exception):
    """The host answered a request with an error (Go's, or neonize's)."""


class HostProcess:
    """One running host and the sessions placed on it."""

    def __init__(self, *, solo: bool, name: str) -> None:
        self.solo = solo
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None
        self.sessions: dict[str, NoteSink] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._rids = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self.alive = False
        self.exit_reason: str | None = None
        self.on_exit: Callable[[HostProcess], None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def spawn(self, *, factory: str | None, env: dict[str, str] | None) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [
            sys.executable,
            "-m",
            "zapgate.engines.whatsmeow.host",
            "--fd",
            str(theirs.fileno()),
        ]
        if factory:
            argv += ["--factory", factory]
        argv += [
            "--log-level",
            logging.getLevelName(logging.getLogger("zapgate").getEffectiveLevel()),
        ]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env={**_host_environment(), **(env or {})},
                start_new_session=True,  # a Ctrl+C in a terminal is the worker's to handle
            )
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        self.alive = True
        self._reader_task = asyncio.create_task(
            self._read(reader), name=f"whatsmeow-host:{self.name}"
        )
        logger.info(
            "whatsmeow host %s started (pid %s, %s)",
            self.name,
            self.pid,
            "solo" if self.solo else "shared",
        )

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head, size = rpc.parse_prefix(await reader.readexactly(rpc.PREFIX.size))
                header = rpc.parse_header(await reader.readexactly(head))
                body = await reader.readexactly(size) if size else b""
                frame = Frame(header, body)
                if frame.op == "reply":
                    future = self._pending.pop(int(header.get("rid", 0)), None)
                    if future is not None and not future.done():
                        future.set_result(frame)
                elif frame.op == "note":
                    note = Note.from_frame(frame)
                    sink = self.sessions.get(note.client)
                    if sink is not None:
                        sink(note)
        except (asyncio.IncompleteReadError, ConnectionError, rpc.ProtocolError) as exc:
            if isinstance(exc, rpc.ProtocolError):
                logger.error("whatsmeow host %s sent a bad frame: %s", self.name, exc)
        finally:
            await self._ended()

    async def _ended(self) -> None:
        self.alive = False
        proc = self.proc
        code: int | None = None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # a host that stopped talking is of no use
            code = await proc.wait()
        self.exit_reason = _describe_exit(code)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(HostGone(self.exit_reason))
        self._pending.clear()
        sessions, self.sessions = self.sessions, {}
        for client_id, sink in sessions.items():
            # Every session it ran learns that its attempt is over (attempt 0: whichever).
            error = f"the engine process {self.exit_reason}"
            sink(Note("ended", client_id, 0, {"error": error, "host_died": True}))
        if self._writer is not None:
            self._writer.close()
        if self.on_exit is not None:
            self.on_exit(self)

    async def call(
        self,
        op: Op,
        *,
        body: bytes = b"",
        timeout: float | None = None,  # noqa: ASYNC109 - a per-request deadline
        **args: Any,
    ) -> Frame:
        """Send one request and wait for its reply (HostCallFailed when Go said no); at
        most `timeout` seconds (TimeoutError), the deadline travelling with the request."""
        if not self.alive or self._writer is None:
            raise HostGone(self.exit_reason or "not running")
        rid = next(self._rids)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            async with self._write_lock:
                self._writer.write(rpc.request(op, rid, body, **args).encode())
                await self._writer.drain()
            async with asyncio.timeout(timeout):
                frame = await future
        except (ConnectionError, RuntimeError) as exc:
            raise HostGone(str(exc) or "the connection closed") from exc
        finally:
            self._pending.pop(rid, None)
        if not frame.header.get("ok"):
            raise HostCallFailed(str(frame.header.get("error") or "failed"))
        return frame

    async def kill(self) -> None:
        """End the process now (SIGKILL: a wedged Go core ignores anything gentler)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


def _host_environment() -> dict[str, str]:
    """The worker's environment without zapgate's own settings: a host needs none of them
    (what it needs comes with each request), and keys and database URLs stay out of a
    process that runs third-party native code."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ZAPGATE_")}


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "ended"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


class HostPool:
    """Every whatsmeow host of one worker."""

    def __init__(
        self,
        *,
        sessions_per_host: int = 25,
        factory: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.sessions_per_host = max(1, sessions_per_host)
        self.factory = factory
        self.env = env
        self.hosts: list[HostProcess] = []
        self._names = itertools.count(1)
        self._lock = asyncio.Lock()

    async def place(self, client_id: str, sink: NoteSink, *, solo: bool) -> HostProcess:
        """A host for `client_id` (its notes go to `sink`)."""
        async with self._lock:
            host = None
            if not solo:
                host = next(
                    (
                        h
                        for h in self.hosts
                        if not h.solo and h.alive and len(h.sessions) < self.sessions_per_host
                    ),
                    None,
                )
            if host is None:
                host = HostProcess(solo=solo, name=str(next(self._names)))
                host.on_exit = self._forget
                await host.spawn(factory=self.factory, env=self.env)
                self.hosts.append(host)
            host.sessions[client_id] = sink
            return host

    def _forget(self, host: HostProcess) -> None:
        if host in self.hosts:
            self.hosts.remove(host)

    async def release(self, host: HostProcess, client_id: str) -> None:
        """`client_id` left `host`; a host left empty is ended."""
        host.sessions.pop(client_id, None)
        if not host.sessions:
            self._forget(host)
            await host.kill()

    async def aclose(self) -> None:
        hosts, self.hosts = list(self.hosts), []
        await asyncio.gather(*(h.kill() for h in hosts), return_exceptions=True)
