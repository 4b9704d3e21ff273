"""Benchmark: get-or-create latency (`PUT /v1/sessions/{name}`, the old
`get_or_create_user_instance`) with a big registry.

Before `zapgate serve` (embedded, SQLite, sim engine) starts, 100k users (QUICK 5k), each
with an API key and a stopped session `default`, are inserted in bulk with SQLAlchemy Core
into its database. Then, one request at a time (latency, not throughput), spread over a
200 (QUICK 10) of those users, spread over the table, whose keys have been used once already (active users):

* existing: `PUT /v1/sessions/default` with no body (the API's default: get it, and start
  it, which it already is): `get_or_create_existing_*`;
* new: `PUT /v1/sessions/n{i}`, a session that does not exist yet (created and started,
  showing a QR): `get_or_create_new_*`.

`get_or_create_p99_ms` is the worse of the two p99s.

    python -m bench.get_or_create [--quick]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import httpx

from bench.common import (
    Account,
    Bench,
    Figures,
    Server,
    bench_env,
    expect,
    free_port,
    gather_limited,
    insert_sessions,
    load_figures,
    measure,
    provision,
    sqlite_url,
    standalone,
)
from bench.loadgen import http_request, run_load


def puts(port: int, accounts: Sequence[Account], name: str | None) -> Callable[[int], bytes]:
    """Request i: account i % n PUTs session `name`, or a new one (`n{i}`) when None."""

    def make(i: int) -> bytes:
        account = accounts[i % len(accounts)]
        path = f"/v1/sessions/{name or f'n{i}'}"
        return http_request("PUT", path, port=port, headers=account.headers)

    return make


async def run(bench: Bench) -> Figures:
    users = bench.pick(100_000, 5_000)
    data = bench.workdir("get-or-create")
    url = sqlite_url(data / "data")
    with bench.step(f"inserting {users} users, keys and sessions", total=users) as step:
        accounts = await provision(url, users, step=step)
        await insert_sessions(url, [(a.user_id, "default") for a in accounts])
    # Active users spread over the whole table, not just its end.
    n = bench.pick(200, 10)
    active = accounts[:: max(1, users // n)][:n]
    port = free_port()
    figures: Figures = {"get_or_create_users": float(users)}
    env = bench_env(data / "data", port)
    async with Server.zapgate(["serve"], env, port, data / "serve.log") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            # Each active user's key used once, and their session started: the steady
            # state of a user who calls again.
            def first(a: Account) -> Callable[[], Awaitable[None]]:
                async def call() -> None:
                    await expect(c.put("/v1/sessions/default", headers=a.headers))

                return call

            with bench.step("first calls of the active users", total=len(active)) as step:
                await gather_limited([first(a) for a in active], 8, step)
        for kind, name in (("existing", "default"), ("new", None)):
            make = puts(port, active, name)
            result = await measure(
                bench,
                f"get-or-create, {kind} sessions, 1 connection",
                partial(
                    run_load,
                    port,
                    make,
                    connections=1,
                    duration=bench.pick(10.0, 0.7),
                    warmup=bench.pick(0.5, 0.2),
                ),
            )
            figures |= load_figures(f"get_or_create_{kind}", result)
    figures["get_or_create_p99_ms"] = max(
        figures["get_or_create_existing_p99_ms"], figures["get_or_create_new_p99_ms"]
    )
    return figures


if __name__ == "__main__":
    standalone("get_or_create", run, __doc__)
