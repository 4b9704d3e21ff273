"""What every benchmark shares: the run's context (quick or full, progress bars, notes),
real `zapgate` processes on loopback ports, accounts made in bulk, sessions linked through
the simulated network, and percentiles."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from bench.loadgen import LoadResult, MakeRequest, http_request, run_load

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
ZAPGATE = [sys.executable, "-m", "zapgate"]
T = TypeVar("T")

# A benchmark's figures: flat, numbers only (bench/results/*.json).
Figures = dict[str, float]


class Crash(RuntimeError):
    """Something broke (a server died, a request that must work failed): `make bench`
    fails on this, never on a missed target."""


# -- numbers -------------------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 < q <= 1) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(len(ordered) * q))) - 1]


def r(value: float, digits: int = 1) -> float:
    return round(float(value), digits)


def phone(i: int) -> str:
    """A distinct, valid Brazilian mobile number per i (E.164)."""
    return f"+55119{i:08d}"


# -- the run's context ---------------------------------------------------------------------
class Step:
    """A progress bar (or spinner, without a total) for one long step."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)

    def set(self, completed: float, total: float | None = None) -> None:
        self._progress.update(self._task, completed=completed, total=total)

    def describe(self, description: str) -> None:
        self._progress.update(self._task, description=description)


@dataclass
class Bench:
    """One run of one or more benchmarks: QUICK or full, where its files go, the console
    and progress bars, and notes for the report (what could not be measured, and why)."""

    quick: bool
    tmp: Path
    console: Console
    progress: Progress
    notes: list[str] = field(default_factory=list)
    # A benchmark's own command-line options, when it runs alone.
    options: argparse.Namespace | None = None

    def pick(self, full: T, quick: T) -> T:
        return quick if self.quick else full

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.console.print(f"[yellow]note:[/] {text}")

    def log(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}")

    def workdir(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.tmp))
        return path

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Log how long a part of the run took."""
        t0 = time.perf_counter()
        self.log(f"{name} ...")
        try:
            yield
        finally:
            self.log(f"{name}: {time.perf_counter() - t0:.1f} s")

    @contextlib.contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[Step]:
        task = self.progress.add_task(description, total=total)
        try:
            yield Step(self.progress, task)
        finally:
            self.progress.remove_task(task)

    @classmethod
    @contextlib.contextmanager
    def session(cls, quick: bool) -> Iterator[Bench]:
        # Wide enough for the table when the output is a file or a CI log.
        console = Console(width=None if sys.stdout.isatty() else 200)
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        with tempfile.TemporaryDirectory(prefix="zapgate-bench-") as tmp, progress:
            yield cls(quick=quick, tmp=Path(tmp), console=console, progress=progress)


def run_async(coro: Awaitable[T]) -> T:
    """Run on uvloop when it is installed (uvicorn[standard] brings it): the load
    generator then costs less CPU."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop

    async def main() -> T:
        return await coro

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def standalone(
    name: str,
    run: Callable[[Bench], Awaitable[Figures]],
    doc: str | None,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """`python -m bench.<name> [--quick]`: one benchmark, its table, results/<name>.json.
    `options` adds the benchmark's own (found in `bench.options`)."""
    from bench import report

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts, a few seconds")
    if options is not None:
        options(ap)
    args = ap.parse_args()
    with Bench.session(args.quick) as bench:
        bench.options = args
        figures = run_async(run(bench))
    figures = {"cpu_count": float(os.cpu_count() or 0), "quick": float(args.quick), **figures}
    report.table(bench.console, figures, bench.notes)
    out = RESULTS / f"{name}.json"
    write_json(out, figures)
    bench.console.print(f"written {out.relative_to(REPO)}")


def write_json(path: Path, figures: Figures) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")


# -- processes -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What every benchmark's server runs with: the sim engine, no anti-ban pacing (the
# gateway is measured, not the pacing), loopback webhooks allowed, and room for as many
# sessions per user as a benchmark needs.
SERVER_ENV = {
    "ZAPGATE_ENGINE": "sim",
    "ZAPGATE_LOG_LEVEL": "WARNING",
    "ZAPGATE_SEND_RATE": "off",
    "ZAPGATE_ALLOW_PRIVATE_URLS": "true",
    "ZAPGATE_MAX_SESSIONS_PER_USER": "1000000",
    "PYTHONUNBUFFERED": "1",
}
# Read by the server besides ZAPGATE_*: never inherited from whoever runs the benchmark.
_OUTSIDE = ("IS_PRODUCTION", "RAILWAY_ENVIRONMENT", "PORT")


def bench_env(data_dir: Path, port: int | None = None, **extra: str) -> dict[str, str]:
    """SERVER_ENV over this process's environment minus its ZAPGATE_* variables."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("ZAPGATE_") and k not in _OUTSIDE
    }
    own = {"ZAPGATE_DATA_DIR": str(data_dir)}
    if port is not None:
        own["ZAPGATE_PORT"] = str(port)
    return {**inherited, **SERVER_ENV, **own, **extra}


class Server:
    """A real server process (`zapgate serve|web|worker`, or bench.bare) on 127.0.0.1,
    its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.argv, self.env, self.port, self.log = argv, env, port, log
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.name = " ".join(argv[2:4])

    @classmethod
    def zapgate(cls, args: list[str], env: dict[str, str], port: int, log: Path) -> Server:
        return cls([*ZAPGATE, *args], env, port, log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def check(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise Crash(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    async def start(self, timeout: float = 120.0) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.started_at = time.perf_counter()
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=REPO, stdout=out, stderr=asyncio.subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as c:
            while True:
                await asyncio.sleep(0.05)
                self.check()
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get("/healthz")).status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    await self.kill()
                    raise Crash(f"{self.name} not healthy after {timeout}s:\n{self.tail()}")

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise Crash(f"no VmRSS for process {self.pid}")

    async def stop(self, timeout: float = 180.0) -> float:
        """SIGTERM, then wait for a clean exit (SIGKILL after `timeout`); seconds taken."""
        if self.proc is None or self.proc.returncode is not None:
            return 0.0
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            raise Crash(f"{self.name} did not stop within {timeout}s:\n{self.tail()}") from None
        return time.perf_counter() - t0

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        if exc[0] is None:
            await self.stop()
        else:
            await self.kill()


async def start_together(stack: contextlib.AsyncExitStack, *servers: Server) -> None:
    """Start `servers` at once (each spends seconds importing zapgate); they stop in the
    reverse order when `stack` closes."""
    results = await asyncio.gather(*(s.start() for s in servers), return_exceptions=True)
    if failed := [e for e in results if isinstance(e, BaseException)]:
        for s in servers:
            await s.kill()
        raise failed[0]
    for s in servers:
        stack.push_async_exit(s.__aexit__)


@contextlib.asynccontextmanager
async def serving_sqlite(
    bench: Bench, name: str, *, users: int = 1
) -> AsyncIterator[tuple[Server, list[Account]]]:
    """`zapgate serve` (embedded, SQLite) on a fresh data dir with `users` users (API keys
    included) made before it started: (the server, the users)."""
    data = bench.workdir(name)
    accounts = await provision(sqlite_url(data / "data"), users)
    port = free_port()
    env = bench_env(data / "data", port)
    async with Server.zapgate(["serve"], env, port, data / "serve.log") as server:
        yield server, accounts


# -- accounts in bulk ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Account:
    user_id: int
    email: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def provision(
    db_url: str, n: int, *, step: Step | None = None, chunk: int = 5000
) -> list[Account]:
    """`n` users, each with an API key, inserted in bulk with SQLAlchemy Core on the
    registry's own database, migrated first as `zapgate users create` would. The first
    user of an empty registry is an administrator, as with `zapgate users create`."""
    from sqlalchemy import func, insert, select

    from zapgate.registry import Registry, credentials
    from zapgate.registry.engine import create_engine
    from zapgate.registry.tables import ApiKeyRow, UserRow

    registry = await Registry.open(db_url)
    await registry.close()
    engine = create_engine(db_url)
    accounts: list[Account] = []
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            first = int(await conn.scalar(select(func.coalesce(func.max(UserRow.id), 0))) or 0)
        for lo in range(0, n, chunk):
            ids = range(first + 1 + lo, first + 1 + min(n, lo + chunk))
            batch = [Account(i, f"bench{i}@example.com", credentials.new_api_key()) for i in ids]
            users = [
                {"id": a.user_id, "email": a.email, "is_admin": a.user_id == 1, "created_at": now}
                for a in batch
            ]
            keys = [
                {
                    "user_id": a.user_id,
                    "name": "bench",
                    "prefix": a.key[: credentials.DISPLAY_PREFIX_CHARS],
                    "key_hash": credentials.hash_api_key(a.key),
                    "created_at": now,
                }
                for a in batch
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(UserRow), users)
                await conn.execute(insert(ApiKeyRow), keys)
            accounts += batch
            if step is not None:
                step.set(len(accounts), n)
    finally:
        await engine.dispose()
    return accounts


@dataclass(frozen=True, slots=True)
class SessionRef:
    user_id: int
    name: str
    client_id: str
    session_dir: str


async def insert_sessions(
    db_url: str, wanted: Sequence[tuple[int, str]], *, chunk: int = 5000
) -> list[SessionRef]:
    """A stopped sim session on the embedded worker per (user id, name), inserted in bulk
    as `SessionRepo.get_or_create` would make it (client id and session dir derived)."""
    from sqlalchemy import insert

    from zapgate.domain.ids import derive_client_id, session_dir_for
    from zapgate.domain.state import SessionState
    from zapgate.registry.engine import create_engine
    from zapgate.registry.tables import SessionRow
    from zapgate.topology.placement import EMBEDDED_WORKER_ID

    refs = []
    for user_id, name in wanted:
        cid = derive_client_id(user_id)
        refs.append(SessionRef(user_id, name, cid, session_dir_for(cid)))
    now = datetime.now(UTC)
    engine = create_engine(db_url)
    try:
        for lo in range(0, len(refs), chunk):
            rows = [
                {
                    "user_id": ref.user_id,
                    "name": ref.name,
                    "client_id": ref.client_id,
                    "session_dir": ref.session_dir,
                    "engine": "sim",
                    "state": SessionState.STOPPED.value,
                    "worker_id": EMBEDDED_WORKER_ID,
                    "worker_url": None,
                    "port": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for ref in refs[lo : lo + chunk]
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(SessionRow), rows)
    finally:
        await engine.dispose()
    return refs


def prelink(data_dir: Path, sessions: Sequence[SessionRef], phones: Sequence[str]) -> None:
    """Link each session to its phone on the in-process simulated network of the server
    that will use `data_dir`, before it starts: what a scan leaves behind, written in bulk
    (the network's state file, and the sim engine's credentials in each session dir)."""
    from zapgate.engines.sim import CREDS_FILE
    from zapgate.jsonfile import atomic_write_json
    from zapgate.simnet.ids import new_token
    from zapgate.simnet.network import STATE_VERSION

    devices = {}
    for ref, number in zip(sessions, phones, strict=True):
        creds = {"device_id": ref.client_id, "phone": number, "token": new_token()}
        devices[ref.client_id] = {"phone": number, "token": creds["token"]}
        path = data_dir / ref.session_dir / CREDS_FILE
        path.parent.mkdir(parents=True)
        # As the engine writes it, but without an fsync per file: nothing crashes here.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(creds, out)
    atomic_write_json(data_dir / "simnet.json", {"version": STATE_VERSION, "devices": devices})


def sqlite_url(data_dir: Path) -> str:
    """The database `zapgate serve` uses in `data_dir` when none is configured."""
    from zapgate.config import Settings

    return Settings(data_dir=data_dir, database_url=None).resolved_database_url


# -- sessions ------------------------------------------------------------------------------
async def expect(response: Awaitable[httpx.Response], *ok: int) -> httpx.Response:
    r = await response
    if r.status_code not in (ok or (200, 201)):
        raise Crash(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
    return r


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise Crash(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


async def link(
    c: httpx.AsyncClient,
    name: str,
    number: str,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> None:
    """Create and start sim session `name`, have the simulated phone `number` scan its QR,
    and wait until it is CONNECTED."""
    path = f"/v1/sessions/{name}"
    await expect(c.put(path, json={"engine": "sim"}, headers=headers))
    qr: list[str] = []

    async def shown() -> bool:
        got = await c.get(f"{path}/qr", headers=headers)
        if got.status_code == 200:
            qr.append(got.json()["qr"])
        return bool(qr)

    await wait_for(f"the QR of {name}", shown, timeout)
    await expect(c.post("/v1/sim/scan", json={"qr": qr[0], "phone": number}, headers=headers))

    async def connected() -> bool:
        got = await expect(c.get(path, headers=headers))
        return bool(got.json()["state"] == "CONNECTED")

    await wait_for(f"{name} CONNECTED", connected, timeout)


async def gather_limited(
    jobs: Sequence[Callable[[], Awaitable[None]]], concurrency: int, step: Step | None = None
) -> None:
    """Run `jobs` with at most `concurrency` at a time; the first failure cancels the rest."""
    queue = iter(jobs)

    async def worker() -> None:
        for job in queue:
            await job()
            if step is not None:
                step.advance()

    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, len(jobs))):
            tg.create_task(worker())


async def link_many(
    bench: Bench,
    server: Server,
    targets: Sequence[tuple[Account, str, str]],
    *,
    concurrency: int = 16,
    label: str = "linking sessions",
) -> None:
    """Link every (account, session name, phone) in `targets` through the API."""

    def job(account: Account, name: str, number: str) -> Callable[[], Awaitable[None]]:
        return lambda: link(c, name, number, headers=account.headers)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as c:
        with bench.step(label, total=len(targets)) as step:
            await gather_limited([job(*t) for t in targets], concurrency, step)


def token() -> str:
    return secrets.token_hex(4)


def as_json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


# -- load ----------------------------------------------------------------------------------
# Connections of the headline figures (the targets are at 32), and the levels of
# the latency-against-load sweep (bench/results/send_latency.png).
MAIN_CONNECTIONS = 32
LEVELS = (1, 2, 4, 8, 16, 32, 64)
QUICK_LEVELS = (1, 32)
RECIPIENTS = tuple(phone(90_000_000 + i) for i in range(50))


def send_requests(port: int, key: str, names: Sequence[str]) -> MakeRequest:
    """Text sends spread over the sessions `names` (request i goes to names[i % n])."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    paths = [f"/v1/sessions/{n}/messages" for n in names]

    def make(i: int) -> bytes:
        body = as_json({"to": RECIPIENTS[i % len(RECIPIENTS)], "text": f"bench {i}"})
        return http_request("POST", paths[i % len(paths)], port=port, body=body, headers=headers)

    return make


async def measure(
    bench: Bench, label: str, load: Callable[..., Awaitable[LoadResult]]
) -> LoadResult:
    """`load(tick=...)` (bench.loadgen.run_load with its arguments bound) under a progress
    bar; failed requests are noted, none succeeding is a crash."""
    with bench.step(label, total=100) as step:
        result = await load(tick=lambda done: step.set(done * 100, 100))
    if result.ok == 0:
        raise Crash(f"{label}: no request succeeded ({dict(result.statuses)})")
    if result.errors:
        bench.note(
            f"{label}: {result.errors} of {result.answered} answers were errors {dict(result.statuses)}"
        )
    return result


def load_figures(prefix: str, result: LoadResult) -> Figures:
    figures = {
        f"{prefix}_per_s": r(result.per_s),
        f"{prefix}_p50_ms": r(pct(result.latencies_ms, 0.5), 2),
        f"{prefix}_p99_ms": r(pct(result.latencies_ms, 0.99), 2),
    }
    if result.errors:
        figures[f"{prefix}_errors"] = float(result.errors)
    return figures


async def sweep(
    bench: Bench,
    label: str,
    port: int,
    make: MakeRequest,
    prefix: str,
    *,
    between: Callable[[int], Awaitable[object]] | None = None,
) -> tuple[Figures, LoadResult]:
    """Closed-loop runs at every level of connections (`{prefix}_c{n}_*` figures); the
    run at MAIN_CONNECTIONS is longer and also returned. `between(n)` runs after each."""
    figures: Figures = {}
    main: LoadResult | None = None
    for n in bench.pick(LEVELS, QUICK_LEVELS):
        headline = n == MAIN_CONNECTIONS
        duration = bench.pick(10.0 if headline else 4.0, 1.0 if headline else 0.5)
        result = await measure(
            bench,
            f"{label}: {n} connection{'s' if n > 1 else ''}",
            partial(
                run_load,
                port,
                make,
                connections=n,
                duration=duration,
                warmup=bench.pick(1.0, 0.2),
            ),
        )
        figures |= load_figures(f"{prefix}_c{n}", result)
        if headline:
            main = result
        if between is not None:
            await between(n)
    assert main is not None
    return figures, main


@contextlib.asynccontextmanager
async def postgres_database(bench: Bench) -> AsyncIterator[str | None]:
    """A throw-away database on the local PostgreSQL (ZAPGATE_BENCH_PG_URL, else
    ZAPGATE_TEST_PG_URL, else postgres@127.0.0.1:5432): its SQLAlchemy URL, or None (and
    a note) when the server cannot be reached."""
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    admin = make_url(
        os.environ.get("ZAPGATE_BENCH_PG_URL")
        or os.environ.get("ZAPGATE_TEST_PG_URL")
        or "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        where = admin.render_as_string(hide_password=True)
        bench.note(f"PostgreSQL not reachable at {where} ({exc}): its figures are missing")
        yield None
        return
    name = f"zapgate_bench_{token()}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
