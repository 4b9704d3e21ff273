"""Benchmark: the webhook dispatcher alone, without the inbound side.

Events are written straight through the registry (a SQLite file, as in `zapgate serve`)
with a delivery for each of `--webhooks` webhooks, and a WebhookDispatcher POSTs them to a
receiver in another process on 127.0.0.1 (uvicorn + Starlette, answering 204, like the
receiver of bench/webhooks.py). Two runs:

- drain: `--events` events are stored first, then the dispatcher starts; deliveries per
  second from its start until the receiver has every one;
- paced: events are stored at `--rate` per second for `--seconds` while the dispatcher
  runs, every 10 ms those due in one transaction, each batch followed by a wake-up (as
  the journal puller does); latency from the event's `occurred_at` to the receiver
  getting it.

Events are inserted in batches with Core, not with `record_event` (one transaction per
event, about 170/s on 2 cores: the inbound side, being made faster separately).

The receiver also counts the TCP connections it was sent on (keep-alive reuse). Writes
bench/results/webhook_drain.json.

    .venv/bin/python bench/webhook_drain.py [--events 5000] [--webhooks 1] [--rate 500]
                                            [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_latency import free_port, pct

from zapgate.config import Settings
from zapgate.pipeline.webhooks import WebhookDispatcher
from zapgate.registry import Registry
from zapgate.registry.tables import DeliveryRow, EventRow

ROOT = Path(__file__).resolve().parent


def serve_receiver(port: int) -> None:
    """The receiver process: remembers when each event id arrived and on which
    connection; GET /stats hands that over."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route as HttpRoute

    arrived: dict[str, float] = {}
    connections: set[tuple[str, int]] = set()
    posts = 0

    async def hook(request: Request) -> Response:
        nonlocal posts
        await request.body()
        posts += 1
        arrived.setdefault(request.headers["x-zapgate-event-id"] + request.url.path, time.time())
        if request.client is not None:
            connections.add((request.client.host, request.client.port))
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        return JSONResponse({"arrived": arrived, "connections": len(connections), "posts": posts})

    async def count(request: Request) -> Response:
        return JSONResponse(len(arrived))

    async def reset(request: Request) -> Response:
        nonlocal posts
        arrived.clear()
        connections.clear()
        posts = 0
        return Response(status_code=204)

    app = Starlette(
        routes=[
            HttpRoute("/h/{n}", hook, methods=["POST"]),
            HttpRoute("/stats", stats),
            HttpRoute("/count", count),
            HttpRoute("/reset", reset, methods=["POST"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def receiver_stats(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as c:
        data: dict[str, Any] = (await c.get(base + "/stats")).json()
        return data


async def wait_for(base: str, expected: int) -> None:
    async with asyncio.timeout(600), httpx.AsyncClient(timeout=30) as c:
        while (await c.get(base + "/count")).json() < expected:
            await asyncio.sleep(0.05)


async def setup(db_url: str, base: str, webhooks: int) -> tuple[Registry, int, list[int]]:
    registry = await Registry.open(db_url)
    user = await registry.users.create("bench@example.com")
    hooks = [
        (
            await registry.outbox.create_webhook(
                user.id, url=f"{base}/h/{n}", secret="s" * 32, events=[]
            )
        ).id
        for n in range(webhooks)
    ]
    return registry, user.id, hooks


async def store(registry: Registry, user_id: int, hooks: list[int], first: int, count: int) -> None:
    """`count` events, each with a delivery to every webhook, in one transaction: what the
    journal puller does once it stores a page of events at a time (today it stores one
    per transaction, about 170/s on 2 cores, which would make this a benchmark of that).
    Through the registry's own write lock, so it queues with the dispatcher's writes."""
    now = datetime.now(UTC)
    events = [
        {
            "id": f"evt_bench_{i}",
            "user_id": user_id,
            "session_id": None,
            "session_name": "bench",
            "type": "message.received",
            "occurred_at": now,
            "data": json.dumps({"text": f"bench {i}"}),
        }
        for i in range(first, first + count)
    ]
    async with registry._db.write() as s:
        conn = await s.connection()
        seqs = (await conn.execute(insert(EventRow).returning(EventRow.seq), events)).scalars()
        deliveries = [
            {
                "webhook_id": hook,
                "event_seq": seq,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for seq in seqs
            for hook in hooks
        ]
        await conn.execute(insert(DeliveryRow), deliveries)


async def drain(
    registry: Registry, user_id: int, hooks: list[int], settings: Settings, base: str, n: int
) -> dict[str, Any]:
    for first in range(0, n, 500):
        await store(registry, user_id, hooks, first, min(500, n - first))
    expected = n * len(hooks)
    dispatcher = WebhookDispatcher(settings, registry)
    cpu0, t0 = time.process_time(), time.perf_counter()
    dispatcher.start()
    try:
        await wait_for(base, expected)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await dispatcher.close()
    stats = await receiver_stats(base)
    return {
        "deliveries": expected,
        "wall_s": round(wall, 2),
        "deliveries_per_s": round(expected / wall, 1),
        "cpu_ms_per_delivery": round(cpu * 1000 / expected, 3),
        "posts": stats["posts"],
        "connections": stats["connections"],
    }


async def paced(
    registry: Registry,
    user_id: int,
    hooks: list[int],
    settings: Settings,
    base: str,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    """Events stored every 10 ms, as many as `rate` says are due, each batch followed by
    a wake-up (the journal puller's on_applied)."""
    dispatcher = WebhookDispatcher(settings, registry)
    dispatcher.start()
    n = int(rate * seconds)
    stored = 0
    t0 = time.perf_counter()
    try:
        while stored < n:
            due = min(n, int((time.perf_counter() - t0) * rate) + 1)
            if due > stored:
                await store(registry, user_id, hooks, 10**9 + stored, due - stored)
                stored = due
                dispatcher.wake()
            await asyncio.sleep(0.01)
        stored_s = time.perf_counter() - t0
        await wait_for(base, n * len(hooks))
        wall = time.perf_counter() - t0
    finally:
        await dispatcher.close()
    stats = await receiver_stats(base)
    occurred = {
        e.id: e.occurred_at.timestamp()
        for e in await registry.outbox.list_events(user_id, session_id=None, after=0, limit=10**7)
    }
    lat = [
        (arrived - occurred[key.split("/")[0]]) * 1000 for key, arrived in stats["arrived"].items()
    ]
    return {
        "offered_events_per_s": rate,
        "events": n,
        "deliveries": n * len(hooks),
        "stored_s": round(stored_s, 2),
        "wall_s": round(wall, 2),
        "deliveries_per_s": round(n * len(hooks) / wall, 1),
        "latency_p50_ms": round(pct(lat, 0.5), 1),
        "latency_p99_ms": round(pct(lat, 0.99), 1),
        "latency_max_ms": round(max(lat), 1),
        "connections": stats["connections"],
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
        [sys.executable, __file__, "--receiver", str(port)]
    )
    tmp = tempfile.mkdtemp()
    url = f"sqlite+aiosqlite:///{tmp}/drain.db"
    settings = Settings(allow_private_urls=True, data_dir=Path(tmp), database_url=url)
    try:
        async with httpx.AsyncClient() as c:
            for _ in range(100):
                try:
                    await c.get(base + "/count")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        registry, user_id, hooks = await setup(url, base, args.webhooks)
        try:
            result: dict[str, Any] = {"webhooks": args.webhooks, "cpu_count": os.cpu_count()}
            result["drain"] = await drain(registry, user_id, hooks, settings, base, args.events)
            async with httpx.AsyncClient() as c:
                await c.post(base + "/reset")
            if args.seconds:
                result["paced"] = await paced(
                    registry, user_id, hooks, settings, base, args.rate, args.seconds
                )
        finally:
            await registry.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5000, help="events stored before the drain")
    ap.add_argument("--webhooks", type=int, default=1, help="webhooks each event goes to")
    ap.add_argument("--rate", type=float, default=500.0, help="events/s offered, paced run")
    ap.add_argument("--seconds", type=float, default=10.0, help="paced run length (0: none)")
    ap.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.receiver:
        serve_receiver(args.receiver)
        return
    started = datetime.now().isoformat(timespec="seconds")
    result = asyncio.run(run(args))
    result["started"] = started
    print("webhook dispatcher alone (SQLite registry, loopback receiver in another process)")
    print(json.dumps(result, indent=2))
    out = ROOT / "results" / "webhook_drain.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
