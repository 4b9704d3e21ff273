"""Benchmark: webhook throughput and enqueue-to-delivery latency.

`zapgate serve` (embedded, SQLite, sim engine) and a receiver on 127.0.0.1 (in this
process). Several users (10; QUICK 3), each with a linked sim session and a webhook for
`message.received` on the receiver; simulated phones write to the linked numbers through
`POST /v1/sim/phones/{phone}/messages`. Each message is one event: engine -> worker
journal -> puller -> registry + outbox -> signed POST to the receiver.

* sustained: the phones write as fast as the API takes them (closed loop) for a while;
  `webhook_deliveries_per_s` is the events delivered over the time from the first write
  to the last delivery (the backlog included). Webhooks are delivered in order each, so
  the same run against one webhook gives `webhook_deliveries_per_s_one_hook`;
* latency: the phones write at 500 events/s offered (open loop); `webhook_p99_ms` runs
  from when a write was due to the receiver getting its webhook (an event still missing
  at the end counts with the time waited so far);
* the receiver alone, POSTed the same way from this process: `webhook_receiver_req_per_s`.

The phones' writes go through the same server, so they share its CPU with the pipeline.

    python -m bench.webhooks [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, MutableMapping, Sequence
from functools import partial
from typing import Any

import httpx
import uvicorn

from bench.bare import Receive, Scope, Send
from bench.common import (
    Account,
    Bench,
    Crash,
    Figures,
    Server,
    as_json,
    expect,
    free_port,
    link_many,
    measure,
    pct,
    phone,
    r,
    serving_sqlite,
    standalone,
)
from bench.loadgen import MakeRequest, http_request, run_load

OFFERED_PER_S = 500.0
# Simulated phones that write (they are linked to no session).
WRITERS = tuple(phone(80_000_000 + i) for i in range(20))


class Receiver:
    """A webhook receiver on 127.0.0.1: when each `message.received` first arrived, by
    the message's text."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[str, float] = {}
        self.posts = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message: MutableMapping[str, Any] = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.perf_counter()
        self.posts += 1
        with contextlib.suppress(ValueError, KeyError, TypeError):
            event = json.loads(body)
            if event["type"] == "message.received":
                self.arrivals.setdefault(str(event["data"]["text"]), now)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def __aenter__(self) -> Receiver:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.get_running_loop().create_task(
            self._server.serve(), name="bench:receiver"
        )
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task

    async def delivered(self, texts: Sequence[str], timeout: float, server: Server) -> int:
        """Wait until every text arrived or `timeout` passed; how many arrived."""
        deadline = time.perf_counter() + timeout
        while (missing := sum(t not in self.arrivals for t in texts)) and (
            time.perf_counter() < deadline
        ):
            server.check()
            await asyncio.sleep(0.05)
        return len(texts) - missing


def phone_writes(port: int, accounts: Sequence[Account], tag: str) -> MakeRequest:
    """Request i: a simulated phone writes text `{tag}{i}` to account i % n's number."""
    paths = [f"/v1/sim/phones/{WRITERS[i % len(WRITERS)]}/messages" for i in range(len(WRITERS))]

    def make(i: int) -> bytes:
        k = i % len(accounts)
        headers = {**accounts[k].headers, "Content-Type": "application/json"}
        body = as_json({"to": phone(k), "text": f"{tag}{i}"})
        return http_request("POST", paths[i % len(paths)], port=port, body=body, headers=headers)

    return make


class Writes:
    """The phones' writes of one run, by text: when each began (or was due), and which
    the API accepted (only those become events)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.began: dict[str, float] = {}
        self.accepted: list[str] = []

    def issued(self, i: int, at: float) -> None:
        self.began[f"{self.tag}{i}"] = at

    def answered(self, i: int, status: int, _body: bytes) -> None:
        if 200 <= status < 300:
            self.accepted.append(f"{self.tag}{i}")


async def sustained(
    bench: Bench, server: Server, receiver: Receiver, accounts: Sequence[Account], tag: str
) -> tuple[float, float]:
    """(deliveries/s from the first write to the last delivery, writes accepted/s)."""
    make = phone_writes(server.port, accounts, tag)
    writes = Writes(tag)
    label = f"phones writing to {len(accounts)} webhook user{'s' if len(accounts) > 1 else ''}"
    result = await measure(
        bench,
        label,
        partial(
            run_load,
            server.port,
            make,
            connections=16,
            duration=bench.pick(10.0, 0.5),
            on_issue=writes.issued,
            on_response=writes.answered,
        ),
    )
    accepted = writes.accepted
    with bench.step("webhooks: waiting for the backlog", total=len(accepted)):
        got = await receiver.delivered(accepted, bench.pick(180.0, 8.0), server)
    if got < len(accepted):
        bench.note(
            f"{label}: {len(accepted) - got} of {len(accepted)} events not delivered in time"
        )
    arrived = [receiver.arrivals[t] for t in accepted if t in receiver.arrivals]
    if not arrived:
        raise Crash(f"{label}: no webhook arrived")
    wall = max(arrived) - min(writes.began[t] for t in accepted)
    return got / wall, result.per_s


async def latency(
    bench: Bench, server: Server, receiver: Receiver, accounts: Sequence[Account]
) -> Figures:
    make = phone_writes(server.port, accounts, "l")
    writes = Writes("l")
    duration = bench.pick(10.0, 0.25)
    result = await measure(
        bench,
        f"phones writing at {OFFERED_PER_S:.0f} events/s offered",
        partial(
            run_load,
            server.port,
            make,
            connections=64,
            duration=duration,
            rate=OFFERED_PER_S,
            on_issue=writes.issued,
            on_response=writes.answered,
            drain=bench.pick(120.0, 10.0),
        ),
    )
    with bench.step("webhooks: waiting for the deliveries"):
        got = await receiver.delivered(writes.accepted, bench.pick(180.0, 6.0), server)
    end = time.perf_counter()
    lat = [(receiver.arrivals.get(t, end) - writes.began[t]) * 1000 for t in writes.accepted]
    figures = {
        "webhook_p50_ms": r(pct(lat, 0.5), 1),
        "webhook_p99_ms": r(pct(lat, 0.99), 1),
        "webhook_offered_per_s": r(result.ok / duration),
        "webhook_undelivered": float(len(writes.accepted) - got),
    }
    if result.unanswered:
        figures["webhook_writes_unanswered"] = float(result.unanswered)
    return figures


@contextlib.asynccontextmanager
async def gateway(bench: Bench, users: int) -> AsyncIterator[tuple[Server, list[Account]]]:
    """A server whose `users` users have a linked sim session each (phone(k))."""
    async with serving_sqlite(bench, "webhooks", users=users) as (server, accounts):
        await link_many(
            bench,
            server,
            [(a, "default", phone(k)) for k, a in enumerate(accounts)],
            label=f"webhooks: linking {users} sessions",
        )
        yield server, accounts


async def run(bench: Bench) -> Figures:
    users = bench.pick(10, 3)
    figures: Figures = {"webhook_hooks": float(users)}
    async with Receiver() as receiver:
        with bench.phase("webhook receiver alone"):
            sample = as_json({"type": "bench.sample", "data": {"text": "x" * 40}})
            req = http_request(
                "POST", "/h", port=receiver.port, body=sample, headers={"X-Zapgate-Event-Id": "x"}
            )
            alone = await measure(
                bench,
                "webhook receiver alone",
                partial(
                    run_load,
                    receiver.port,
                    lambda _i: req,
                    connections=16,
                    duration=bench.pick(3.0, 0.5),
                ),
            )
            figures["webhook_receiver_req_per_s"] = r(alone.per_s)
        with bench.phase("webhooks through the gateway"):
            async with gateway(bench, users) as (server, accounts):
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
                    for k, a in enumerate(accounts):
                        await expect(
                            c.post(
                                "/v1/webhooks",
                                json={
                                    "url": f"{receiver.url}/h/{k}",
                                    "events": ["message.received"],
                                },
                                headers=a.headers,
                            )
                        )
                rate, posts = await sustained(bench, server, receiver, accounts, "s")
                figures |= {
                    "webhook_deliveries_per_s": r(rate),
                    "webhook_writes_per_s": r(posts),
                }
                if not bench.quick:
                    rate, _ = await sustained(bench, server, receiver, accounts[:1], "o")
                    figures["webhook_deliveries_per_s_one_hook"] = r(rate)
                figures |= await latency(bench, server, receiver, accounts)
    return figures


if __name__ == "__main__":
    standalone("webhooks", run, __doc__)
