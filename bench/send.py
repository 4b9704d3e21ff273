"""Benchmark: sends accepted by the API, next to the limit of the same server stack.

`POST /v1/sessions/{name}/messages` (text) on real servers, sim engine, send rate off,
spread round-robin over linked sessions (100; QUICK 4), by a closed-loop load generator
(bench/loadgen.py) at 1 to 64 connections; the headline figures are at 32 connections:

* embedded topology (`zapgate serve`), SQLite: `send_msgs_per_s`, `send_p99_ms`, and
  `send_c{n}_*` per level (the chart of latency against load);
* the same requests to a bare ASGI endpoint on the same server stack (bench/bare.py):
  `bare_req_per_s`, `send_vs_bare_ratio`;
* PostgreSQL (`zapgate serve --database-url`, a throw-away database; not in QUICK):
  `send_msgs_per_s_postgres`;
* shared topology (`zapgate web` + `zapgate worker`, two processes): `send_msgs_per_s_shared`.

A send is accepted once it is stored (201 sent, or 202 queued for the outbound sender);
between levels the benchmark waits until the outbound queue is empty, so each level starts
clean, and `send_sent_msgs_per_s` is what went out to the simulated network over the
headline run and the drain after it.

    python -m bench.send [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Sequence
from functools import partial

import httpx

from bench.common import (
    MAIN_CONNECTIONS,
    Account,
    Bench,
    Figures,
    Server,
    bench_env,
    expect,
    free_port,
    link_many,
    load_figures,
    measure,
    phone,
    postgres_database,
    provision,
    r,
    send_requests,
    sqlite_url,
    standalone,
    start_together,
    sweep,
)
from bench.loadgen import run_load

WORKER_TOKEN = "bench-worker-token-9f3kQ2xLm7Vb"
PENDING = {"queued", "pending"}


@contextlib.asynccontextmanager
async def linked_gateway(
    bench: Bench, name: str, sessions: int, *, topology: str = "embedded", db_url: str | None = None
) -> AsyncIterator[tuple[Server, Account, list[str]]]:
    """A gateway with one user whose `sessions` sim sessions are linked, each to its own
    simulated phone: (the web server, the user, the session names)."""
    data = bench.workdir(name)
    [account] = await provision(db_url or sqlite_url(data / "web"), 1)
    port = free_port()
    env = bench_env(data / "web", port)
    if db_url is not None:
        env["ZAPGATE_DATABASE_URL"] = db_url
    servers = []
    if topology == "shared":
        wport = free_port()
        wenv = bench_env(data / "worker", ZAPGATE_WORKER_TOKEN=WORKER_TOKEN)
        worker = Server.zapgate(["worker", "--port", str(wport)], wenv, wport, data / "worker.log")
        servers.append(worker)
        env.update(
            ZAPGATE_TOPOLOGY="shared",
            ZAPGATE_WORKER_URL=worker.url,
            ZAPGATE_WORKER_TOKEN=WORKER_TOKEN,
        )
    command = "web" if topology == "shared" else "serve"
    server = Server.zapgate([command], env, port, data / f"{command}.log")
    async with contextlib.AsyncExitStack() as stack:
        await start_together(stack, *servers, server)
        names = [f"s{i:03d}" for i in range(sessions)]
        await link_many(
            bench,
            server,
            [(account, n, phone(i)) for i, n in enumerate(names)],
            label=f"{name}: linking {sessions} sessions",
        )
        yield server, account, names


async def drain(bench: Bench, server: Server, account: Account, names: Sequence[str]) -> float:
    """Wait until no session's newest outbound message is still queued; seconds taken (the
    timeout's, with a note, when the queue did not empty in time)."""
    t0 = time.perf_counter()
    timeout = bench.pick(120.0, 10.0)
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(
        base_url=server.url, headers=account.headers, timeout=60, limits=limits
    ) as c:

        async def newest(name: str) -> str | None:
            got = await expect(
                c.get(f"/v1/sessions/{name}/messages", params={"direction": "out", "limit": 1})
            )
            items = got.json()["items"]
            return str(items[0]["status"]) if items else None

        with bench.step("sending what was accepted") as step:
            while True:
                statuses = await asyncio.gather(*(newest(n) for n in names))
                waiting = sum(s in PENDING for s in statuses)
                step.describe(f"sending what was accepted: {waiting} sessions with a queue")
                if not waiting:
                    return time.perf_counter() - t0
                if time.perf_counter() - t0 > timeout:
                    bench.note(f"the outbound queue was not empty {timeout:.0f}s after a run")
                    return timeout
                server.check()
                await asyncio.sleep(0.5)


async def headline(
    bench: Bench, label: str, server: Server, account: Account, names: Sequence[str], suffix: str
) -> Figures:
    """One run at MAIN_CONNECTIONS: `send_msgs_per_s{suffix}` and its latencies."""
    make = send_requests(server.port, account.key, names)
    result = await measure(
        bench,
        label,
        partial(
            run_load,
            server.port,
            make,
            connections=MAIN_CONNECTIONS,
            duration=bench.pick(10.0, 0.8),
            warmup=bench.pick(1.0, 0.2),
        ),
    )
    f = load_figures("send", result)
    return {
        f"send_msgs_per_s{suffix}": f["send_per_s"],
        f"send_p50_ms{suffix}": f["send_p50_ms"],
        f"send_p99_ms{suffix}": f["send_p99_ms"],
    }


async def embedded_sqlite(bench: Bench, sessions: int) -> tuple[Figures, list[str]]:
    """The sweep over connections on `zapgate serve` with SQLite (the chart's data)."""
    async with linked_gateway(bench, "send-sqlite", sessions) as (server, account, names):
        drains: dict[int, float] = {}

        async def between(level: int) -> None:
            drains[level] = await drain(bench, server, account, names)

        make = send_requests(server.port, account.key, names)
        levels, main = await sweep(
            bench, "send (embedded, SQLite)", server.port, make, "send", between=between
        )
    c = f"send_c{MAIN_CONNECTIONS}"
    return levels | {
        "send_msgs_per_s": levels[f"{c}_per_s"],
        "send_p50_ms": levels[f"{c}_p50_ms"],
        "send_p99_ms": levels[f"{c}_p99_ms"],
        "send_sent_msgs_per_s": r(main.total_ok / (main.wall + drains[MAIN_CONNECTIONS])),
        "send_drain_s": r(drains[MAIN_CONNECTIONS], 2),
    }, names


async def bare_endpoint(bench: Bench, names: Sequence[str]) -> Figures:
    """The same requests and sweep against bench/bare.py on the same server stack."""
    data = bench.workdir("bare")
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare", "--port", str(port)]
    async with Server(argv, bench_env(data), port, data / "bare.log"):
        make = send_requests(port, "zg_bench", names)
        levels, _ = await sweep(bench, "bare ASGI endpoint", port, make, "bare")
    c = f"bare_c{MAIN_CONNECTIONS}"
    return levels | {
        "bare_req_per_s": levels[f"{c}_per_s"],
        "bare_p50_ms": levels[f"{c}_p50_ms"],
        "bare_p99_ms": levels[f"{c}_p99_ms"],
    }


async def run(bench: Bench) -> Figures:
    sessions = bench.pick(100, 4)
    figures: Figures = {"send_sessions": float(sessions), "send_connections": MAIN_CONNECTIONS}
    with bench.phase("send path, embedded, SQLite"):
        found, names = await embedded_sqlite(bench, sessions)
        figures |= found
    with bench.phase("bare ASGI endpoint"):
        figures |= await bare_endpoint(bench, names)
    figures["send_vs_bare_ratio"] = r(figures["send_msgs_per_s"] / figures["bare_req_per_s"], 4)
    if bench.quick:
        bench.note("QUICK: the send path on PostgreSQL is not measured")
    else:
        with bench.phase("send path, embedded, PostgreSQL"):
            async with postgres_database(bench) as url:
                if url is not None:
                    async with linked_gateway(bench, "send-pg", sessions, db_url=url) as linked:
                        figures |= await headline(
                            bench, "send (embedded, PostgreSQL)", *linked, "_postgres"
                        )
    with bench.phase("send path, shared topology, SQLite"):
        async with linked_gateway(bench, "send-shared", sessions, topology="shared") as linked:
            figures |= await headline(bench, "send (shared: web + worker)", *linked, "_shared")
    return figures


if __name__ == "__main__":
    standalone("send", run, __doc__)
