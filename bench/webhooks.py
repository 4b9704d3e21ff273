"""Benchmark: webhook throughput and enqueue-to-delivery latency.

Starts `zapgate serve` (embedded, SQLite, sim engine) on a free loopback port and a
receiver on 127.0.0.1, links a session, then has a simulated phone write N messages to it
as fast as the API takes them. Each becomes a `message.received` event (worker journal ->
registry + outbox in one transaction -> signed POST). Latency is measured from the phone's
POST to the receiver getting the webhook; throughput over the whole run. Writes
bench/results/webhooks.json.

    .venv/bin/python bench/webhooks.py [--messages 500] [--concurrency 8] [--interval 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_latency import ZAPGATE, cli, free_port, pct

ROOT = Path(__file__).resolve().parent
PHONE, FRIEND = "+5511999990003", "+5511988887777"


async def run(n: int, conc: int, interval: float) -> dict[str, float]:
    received: dict[str, float] = {}
    done = asyncio.Event()

    async def hook(request: Request) -> Response:
        body = json.loads(await request.body())
        if body["type"] == "message.received":
            received.setdefault(body["data"]["text"], time.perf_counter())
            if len(received) >= n:
                done.set()
        return Response(status_code=204)

    rport = free_port()
    receiver = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Route("/h", hook, methods=["POST"])]),
            host="127.0.0.1",
            port=rport,
            log_level="warning",
        )
    )
    rtask = asyncio.create_task(receiver.serve())
    tmp = tempfile.mkdtemp()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPGATE_")}
    env.update(
        ZAPGATE_DATA_DIR=f"{tmp}/data",
        ZAPGATE_ENGINE="sim",
        ZAPGATE_PORT=str(port),
        ZAPGATE_LOG_LEVEL="WARNING",
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_SEND_RATE="off",
    )
    cli(["users", "create", "bench@example.com"], env)
    key = cli(["keys", "create", "bench@example.com"], env)
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
        [*ZAPGATE, "serve"], env=env, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    sent: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as c:
            for _ in range(300):
                try:
                    if (await c.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            await c.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{rport}/h"})
            await c.put("/v1/sessions/bench", json={"engine": "sim"})
            qr = None
            while qr is None:
                r = await c.get("/v1/sessions/bench/qr")
                qr = r.json()["qr"] if r.status_code == 200 else None
                await asyncio.sleep(0.05)
            await c.post("/v1/sim/scan", json={"qr": qr, "phone": PHONE})
            while (await c.get("/v1/sessions/bench")).json()["state"] != "CONNECTED":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            sem = asyncio.Semaphore(conc)

            async def write(i: int) -> None:
                if interval:
                    await asyncio.sleep(i * interval)  # paced: latency without a backlog
                async with sem:
                    text = f"bench {i}"
                    sent[text] = time.perf_counter()
                    r = await c.post(
                        f"/v1/sim/phones/{FRIEND}/messages", json={"to": PHONE, "text": text}
                    )
                    r.raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(write(i) for i in range(n)))
            posted = time.perf_counter() - t0
            await asyncio.wait_for(done.wait(), 300)
            wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        receiver.should_exit = True
        await rtask
    lat = [(received[t] - sent[t]) * 1000 for t in sent]
    return {
        "events": n,
        "wall_s": round(wall, 2),
        "events_per_s": round(n / wall, 1),
        "phone_posts_s": round(posted, 2),
        "latency_p50_ms": round(statistics.median(lat), 1),
        "latency_p99_ms": round(pct(lat, 0.99), 1),
        "latency_max_ms": round(max(lat), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument(
        "--interval",
        type=float,
        default=0.0,
        help="seconds between phone messages (0: as fast as the API takes them)",
    )
    args = ap.parse_args()
    result = asyncio.run(run(args.messages, args.concurrency, args.interval))
    print("zapgate serve (embedded, SQLite, sim): inbound message -> signed webhook")
    for k, v in result.items():
        print(f"  {k:16s} {v}")
    out = ROOT / "results" / "webhooks.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
