"""Benchmark: latency of the public API on `zapgate serve` (embedded, SQLite, sim engine).

Starts a real server on a free loopback port, links a session through the simulated
network, then measures get-or-create (PUT /v1/sessions/{name}), session reads and text
sends, sequentially and with concurrent clients. Prints p50/p99 per operation and writes
bench/results/api_latency.json.

    .venv/bin/python bench/api_latency.py [--requests 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent
ZAPGATE = [sys.executable, "-m", "zapgate"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run([*ZAPGATE, *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def summary(ms: list[float], wall: float) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(pct(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "per_s": round(len(ms) / wall, 1),
    }


async def timed(client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> float:
    t0 = time.perf_counter()
    r = await client.request(method, path, **kw)
    elapsed = (time.perf_counter() - t0) * 1000
    if r.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
    return elapsed


async def run_op(
    client: httpx.AsyncClient, n: int, conc: int, method: str, path: str, body: Any = None
) -> dict[str, float]:
    sem = asyncio.Semaphore(conc)
    out: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            payload = body(i) if callable(body) else body
            out.append(await timed(client, method, path, json=payload))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return summary(out, time.perf_counter() - t0)


async def bench(base: str, key: str, n: int, conc: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as c:
        await c.put("/v1/sessions/bench", json={"engine": "sim"})
        qr = None
        for _ in range(100):
            r = await c.get("/v1/sessions/bench/qr")
            if r.status_code == 200:
                qr = r.json()["qr"]
                break
            await asyncio.sleep(0.05)
        assert qr, "no QR"
        await c.post("/v1/sim/scan", json={"qr": qr, "phone": "+5511999990003"})
        for _ in range(100):
            if (await c.get("/v1/sessions/bench")).json()["state"] == "CONNECTED":
                break
            await asyncio.sleep(0.05)
        results: dict[str, Any] = {}
        for label, cc in (("sequential", 1), (f"concurrency_{conc}", conc)):
            results[label] = {
                "put_session": await run_op(
                    c, n, cc, "PUT", "/v1/sessions/bench", {"start": False}
                ),
                "get_session": await run_op(c, n, cc, "GET", "/v1/sessions/bench"),
                "send_text": await run_op(
                    c,
                    n,
                    cc,
                    "POST",
                    "/v1/sessions/bench/messages",
                    lambda i: {"to": "+5511988887777", "text": f"bench {i}"},
                ),
                "list_messages": await run_op(c, n, cc, "GET", "/v1/sessions/bench/messages"),
            }
        return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZAPGATE_")}
        env.update(
            ZAPGATE_DATA_DIR=f"{tmp}/data",
            ZAPGATE_ENGINE="sim",
            ZAPGATE_PORT=str(port),
            ZAPGATE_LOG_LEVEL="WARNING",
            ZAPGATE_SEND_RATE="off",  # measure the gateway, not the anti-ban pacing
        )
        cli(["users", "create", "bench@example.com"], env)
        key = cli(["keys", "create", "bench@example.com"], env)
        proc = subprocess.Popen([*ZAPGATE, "serve"], env=env, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            results = asyncio.run(bench(base, key, args.requests, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    print(f"zapgate serve (embedded, SQLite, sim engine), {args.requests} requests per op")
    for mode, ops in results.items():
        print(f"\n{mode}:")
        for op, s in ops.items():
            print(
                f"  {op:14s} p50 {s['p50_ms']:7.2f} ms  p99 {s['p99_ms']:7.2f} ms  "
                f"max {s['max_ms']:7.2f} ms  {s['per_s']:7.1f} req/s"
            )
    out = ROOT / "results" / "api_latency.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"requests": args.requests, "results": results}, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
