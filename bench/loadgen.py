"""A small HTTP/1.1 load generator: keep-alive connections, one request in flight on each,
pre-encoded requests, responses parsed just enough to find their end.

httpx spends about half a millisecond of CPU per request; at thousands of requests a
second that is a whole core, and the client, not the server, would be measured. This
costs a few microseconds per request, so on a 2-core machine the server gets its core.

* closed loop (`rate=None`): every connection sends its next request as soon as the last
  one is answered; latency is from writing the request to the end of the response;
* open loop (`rate=R`): request i is due at start + i/R whatever happens; a due request
  waits for a free connection, and its latency counts from when it was due (no
  coordinated omission: a slow server cannot slow the offered load down).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

# Builds request number i (the whole HTTP/1.1 request, body included).
MakeRequest = Callable[[int], bytes]
# Called with (request number, status, response body) for every answered request.
OnResponse = Callable[[int, int, bytes], None]
# Called with (request number, when it began: written, or due in an open loop).
OnIssue = Callable[[int, float], None]
# Called with the fraction of the run done, about ten times a second.
Tick = Callable[[float], None]


def http_request(
    method: str,
    path: str,
    *,
    port: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    """One HTTP/1.1 keep-alive request to 127.0.0.1:port, encoded."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class LoadError(RuntimeError):
    """The server closed a connection or sent something that is not HTTP/1.1."""


@dataclass
class LoadResult:
    """What one run measured: `latencies_ms` and `statuses` of the requests answered in
    the measured window (after the warm-up), `elapsed` the window's length in seconds."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0
    # Open loop: requests due in the window but not answered when the run ended.
    unanswered: int = 0
    # Successful requests of the whole run, warm-up included, and the run's wall time.
    total_ok: int = 0
    wall: float = 0.0

    @property
    def answered(self) -> int:
        return len(self.latencies_ms)

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        return self.answered - self.ok

    @property
    def per_s(self) -> float:
        """Successful requests per second over the window."""
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = exc or LoadError("the server closed the connection")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = self._parse()
        except LoadError as exc:
            waiter.set_exception(exc)
            return
        if parsed is not None:
            waiter.set_result(parsed)

    def _parse(self) -> tuple[int, bytes] | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).lower()
        if not head.startswith(b"http/1.1 "):
            raise LoadError(f"not an HTTP/1.1 response: {head[:40]!r}")
        status = int(head[9:12])
        start = end + 4
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            if len(buf) < start + length:
                return None
            body = bytes(buf[start : start + length])
            del buf[: start + length]
            return status, body
        if b"\r\ntransfer-encoding: chunked" in head:
            # Rare here (JSON answers carry a length); good enough for small bodies.
            last = buf.find(b"\r\n0\r\n\r\n", start - 2)
            if last < 0:
                return None
            body = bytes(buf[start:last])
            del buf[: last + 7]
            return status, body
        del buf[:start]  # no body (204, 304)
        return status, b""

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self._lost is not None:
            raise self._lost
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self._waiter


async def _connect(port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(_Connection, "127.0.0.1", port)
    return conn


async def run_load(
    port: int,
    make: MakeRequest,
    *,
    connections: int,
    duration: float,
    warmup: float = 0.0,
    rate: float | None = None,
    on_response: OnResponse | None = None,
    on_issue: OnIssue | None = None,
    tick: Tick | None = None,
    drain: float = 60.0,
) -> LoadResult:
    """Load 127.0.0.1:port for `warmup` + `duration` seconds; only requests begun (closed
    loop) or due (open loop) in the last `duration` seconds are measured. An open-loop run
    then waits up to `drain` seconds for the requests still queued or in flight.
    `tick(fraction_done)` is called about ten times a second."""
    conns = [await _connect(port) for _ in range(connections)]
    result = LoadResult(elapsed=duration)
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    measure_from, stop_at = t0 + warmup, t0 + warmup + duration
    counter = iter(range(1 << 62))
    due: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    issued = 0

    def record(i: int, started: float, status: int, body: bytes) -> None:
        result.total_ok += 200 <= status < 300
        if started >= measure_from:
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[status] += 1
        if on_response is not None:
            on_response(i, status, body)

    async def closed(conn: _Connection) -> None:
        while (started := time.perf_counter()) < stop_at:
            i = next(counter)
            if on_issue is not None:
                on_issue(i, started)
            status, body = await conn.request(make(i))
            record(i, started, status, body)

    async def open_(conn: _Connection) -> None:
        while (item := await due.get())[0] >= 0:
            i, due_at = item
            if on_issue is not None:
                on_issue(i, due_at)
            status, body = await conn.request(make(i))
            record(i, due_at, status, body)

    async def pace(rate: float) -> None:
        nonlocal issued
        i = 0
        while (due_at := t0 + i / rate) < stop_at:
            await asyncio.sleep(max(0.0, due_at - time.perf_counter()))
            now = time.perf_counter()
            while due_at <= now and due_at < stop_at:
                due.put_nowait((i, due_at))
                issued += due_at >= measure_from
                i += 1
                due_at = t0 + i / rate
        for _ in conns:
            due.put_nowait((-1, 0.0))

    async def ticker() -> None:
        while (now := time.perf_counter()) < stop_at:
            if tick is not None:
                tick(min(1.0, (now - t0) / (stop_at - t0)))
            await asyncio.sleep(0.1)

    ticking = loop.create_task(ticker(), name="loadgen:tick")
    try:
        if rate is None:
            await asyncio.gather(*(closed(c) for c in conns))
        else:
            workers = [loop.create_task(open_(c), name="loadgen:conn") for c in conns]
            await pace(rate)
            done, pending = await asyncio.wait(
                workers, timeout=stop_at - time.perf_counter() + drain
            )
            for w in pending:
                w.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for w in done:
                if (exc := w.exception()) is not None:
                    raise exc
            result.unanswered = issued - result.answered
    finally:
        ticking.cancel()
        for c in conns:
            if c.transport is not None:
                c.transport.close()
    result.wall = time.perf_counter() - t0
    if tick is not None:
        tick(1.0)
    return result
