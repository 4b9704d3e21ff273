"""Benchmark: latency of the public API operations on `zapgate serve` (embedded, SQLite,
sim engine), one linked session.

Get-or-create (`PUT /v1/sessions/{name}`), session reads, text sends and history reads,
each N times sequentially and then with concurrent clients (httpx, as an application
would call it): `api_{op}_{sequential|concurrent}_{p50_ms,p99_ms,max_ms,per_s}`.

    python -m bench.api_latency [--quick] [--requests 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench.common import (
    Bench,
    Crash,
    Figures,
    link,
    pct,
    phone,
    r,
    serving_sqlite,
    standalone,
)

Body = dict[str, Any] | Callable[[int], dict[str, Any]] | None


async def run_op(
    c: httpx.AsyncClient, n: int, conc: int, method: str, path: str, body: Body = None
) -> dict[str, float]:
    sem = asyncio.Semaphore(conc)
    out: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            payload = body(i) if callable(body) else body
            t0 = time.perf_counter()
            got = await c.request(method, path, json=payload)
            out.append((time.perf_counter() - t0) * 1000)
            if got.status_code >= 400:
                raise Crash(f"{method} {path}: {got.status_code} {got.text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    return {
        "p50_ms": r(pct(out, 0.5), 2),
        "p99_ms": r(pct(out, 0.99), 2),
        "max_ms": r(max(out), 2),
        "per_s": r(n / wall),
    }


async def measure_api(bench: Bench, requests: int, concurrency: int) -> Figures:
    figures: Figures = {"api_requests": float(requests), "api_concurrency": float(concurrency)}
    async with serving_sqlite(bench, "api", users=1) as (server, [account]):
        client = httpx.AsyncClient(base_url=server.url, headers=account.headers, timeout=60)
        async with client as c:
            await link(c, "bench", phone(0))
            ops: dict[str, tuple[str, str, Body]] = {
                "put_session": ("PUT", "/v1/sessions/bench", {"start": False}),
                "get_session": ("GET", "/v1/sessions/bench", None),
                "send_text": (
                    "POST",
                    "/v1/sessions/bench/messages",
                    lambda i: {"to": "+5511988887777", "text": f"bench {i}"},
                ),
                "list_messages": ("GET", "/v1/sessions/bench/messages", None),
            }
            with bench.step("API operations", total=2 * len(ops)) as step:
                for mode, conc in (("sequential", 1), ("concurrent", concurrency)):
                    for op, (method, path, body) in ops.items():
                        found = await run_op(c, requests, conc, method, path, body)
                        figures |= {f"api_{op}_{mode}_{k}": v for k, v in found.items()}
                        step.advance()
    return figures


async def run(bench: Bench) -> Figures:
    options = bench.options
    requests = getattr(options, "requests", None) or bench.pick(300, 5)
    return await measure_api(bench, requests, getattr(options, "concurrency", 8))


def options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--requests", type=int, help="per operation and mode (default 300)")
    ap.add_argument("--concurrency", type=int, default=8)


if __name__ == "__main__":
    standalone("api_latency", run, __doc__, options)
