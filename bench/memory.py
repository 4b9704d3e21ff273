"""Benchmark: gateway memory per hosted sim session, and the time to restore them all.

One `zapgate serve` (embedded, SQLite, sim engine, the simulated network in the same
process as it is by default). Linking through the API (PUT, QR, `POST /v1/sim/scan`)
takes about a tenth of a second of the server's time per session (several registry
writes each), so 10k would take half an hour: before the server starts, the sessions
(one user's) go into the registry in bulk with SQLAlchemy Core, and each is linked to its
own phone in bulk the way a scan leaves it (the simulated network's state file and the
engine's credentials in the session dir). The server's worker then hosts every one:
`POST /v1/sessions/{name}/start` each, which resumes the link without a QR (CONNECTED).

* `rss_per_session_kb_1k`, `rss_per_session_kb_10k` (`rss_per_session_kb` is the larger
  count): the server's RSS once 1k (then 10k) sessions are CONNECTED, minus its RSS before,
  divided by the count. A few sessions are linked before the "before" reading, so that
  what the first session loads once (modules, caches) is not counted per session. The
  simulated network's own per-device state is in the same process and counts too;
* `restore_10k_s`: the server is stopped (SIGTERM, a clean shutdown) and started again;
  the time from starting the process until the API shows every session CONNECTED again
  (state changed after the restart). The worker restores linked sessions one after
  another, `restore_stagger_s` apart: that product is the floor shown beside it.

QUICK: 20 and 40 sessions, under the same keys (`memory_sessions_small` and
`memory_sessions` say how many).

    python -m bench.memory [--quick]
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import httpx

from bench.common import (
    Account,
    Bench,
    Crash,
    Figures,
    Server,
    bench_env,
    expect,
    free_port,
    gather_limited,
    insert_sessions,
    phone,
    prelink,
    provision,
    r,
    sqlite_url,
    standalone,
)


def restore_stagger() -> float:
    """The pause between two restored sim sessions, as the engine has it."""
    from zapgate.engines.sim import SimEngine

    return float(SimEngine.restore_interval)


async def steady_rss(bench: Bench, server: Server) -> int:
    """The median of a few RSS readings once the server has had a moment to settle (kB)."""
    await asyncio.sleep(bench.pick(2.0, 0.2))
    readings = []
    for _ in range(5):
        readings.append(server.rss_kb())
        await asyncio.sleep(bench.pick(0.4, 0.05))
    return int(statistics.median(readings))


async def start_all(bench: Bench, server: Server, admin: Account, names: Sequence[str]) -> None:
    """Start each session through the API; each must come back CONNECTED."""

    def job(c: httpx.AsyncClient, name: str) -> Callable[[], Awaitable[None]]:
        async def start() -> None:
            got = await expect(c.post(f"/v1/sessions/{name}/start"))
            if got.json()["state"] != "CONNECTED":
                raise Crash(f"{name} started as {got.json()['state']}, not CONNECTED")

        return start

    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(
        base_url=server.url, headers=admin.headers, timeout=120, limits=limits
    ) as c:
        with bench.step(f"hosting {len(names)} sessions", total=len(names)) as step:
            await gather_limited([job(c, n) for n in names], 32, step)


async def restored(
    bench: Bench, server: Server, admin: Account, count: int, since: datetime
) -> None:
    """Wait until the API shows `count` sessions CONNECTED, each changed after `since`."""
    limit = bench.pick(1800.0, 60.0)
    async with httpx.AsyncClient(base_url=server.url, headers=admin.headers, timeout=120) as c:
        with bench.step("restoring sessions", total=count) as step:
            while True:
                t0 = time.perf_counter()
                got = await expect(c.get("/v1/admin/sessions"))
                ready = sum(
                    s["state"] == "CONNECTED" and datetime.fromisoformat(s["updated_at"]) > since
                    for s in got.json()["items"]
                )
                step.set(ready, count)
                if ready >= count:
                    return
                if time.perf_counter() - server.started_at > limit:
                    raise Crash(f"only {ready} of {count} sessions restored after {limit:.0f}s")
                server.check()
                # Listing every session costs the server too: ask seldom when it is slow.
                await asyncio.sleep(max(0.2, 5 * (time.perf_counter() - t0)))


async def run(bench: Bench) -> Figures:
    small, large = bench.pick((1000, 10_000), (20, 40))
    warm = bench.pick(20, 3)
    data = bench.workdir("memory")
    url = sqlite_url(data / "data")
    with bench.step("inserting and linking sessions in bulk"):
        [admin] = await provision(url, 1)
        refs = await insert_sessions(
            url, [(admin.user_id, f"s{i:05d}") for i in range(warm + large)]
        )
        await asyncio.to_thread(prelink, data / "data", refs, [phone(i) for i in range(len(refs))])
    names = [ref.name for ref in refs]
    port = free_port()
    env = bench_env(data / "data", port)
    figures: Figures = {
        "memory_sessions_small": float(small),
        "memory_sessions": float(large),
        "restore_sessions": float(warm + large),
        "restore_stagger_s": restore_stagger(),
    }
    server = Server.zapgate(["serve"], env, port, data / "serve.log")
    async with server:
        await start_all(bench, server, admin, names[:warm])
        base = await steady_rss(bench, server)
        with bench.phase(f"hosting {small} sessions"):
            await start_all(bench, server, admin, names[warm : warm + small])
            at_small = await steady_rss(bench, server)
        with bench.phase(f"hosting {large} sessions"):
            await start_all(bench, server, admin, names[warm + small :])
            at_large = await steady_rss(bench, server)
        figures |= {
            "rss_base_mb": r(base / 1024),
            "rss_1k_mb": r(at_small / 1024),
            "rss_10k_mb": r(at_large / 1024),
            "rss_per_session_kb_1k": r((at_small - base) / small),
            "rss_per_session_kb_10k": r((at_large - base) / large),
            "rss_per_session_kb": r((at_large - base) / large),
        }
        with bench.phase(f"stopping with {warm + large} sessions"):
            figures["shutdown_10k_s"] = r(await server.stop(), 2)
    with bench.phase(f"restoring {warm + large} sessions"):
        since = datetime.now(UTC)
        again = Server.zapgate(["serve"], env, port, data / "serve.log")
        async with again:
            await restored(bench, again, admin, warm + large, since)
            figures["restore_10k_s"] = r(time.perf_counter() - again.started_at, 2)
            figures["rss_restored_mb"] = r(await steady_rss(bench, again) / 1024)
    return figures


if __name__ == "__main__":
    standalone("memory", run, __doc__)
