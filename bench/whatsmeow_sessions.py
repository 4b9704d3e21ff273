"""Benchmark: whatsmeow sessions in host processes (issue 14.2), offline. Memory per linked
and unlinked session, how long a stop takes, how long restoring many linked sessions
takes, and how responsive the worker's loop stays meanwhile.

The engines are the production ones with their production host processes; each host runs
real neonize clients (Go runtime loaded) whose `connect()` talks to the fake WhatsApp of
tests/contract/whatsmeow_fake.py (a process of its own) on 127.0.0.1 instead of
WhatsApp's servers: nothing leaves the machine. This process plays the worker, which never
loads neonize. What a real whatsmeow connection costs on top (its websocket, keys
and goroutines) cannot be measured offline and is not in these figures.

* unlinked: `--unlinked` sessions brought to SCAN_QR, each in a host of its own; memory
  is the hosts' proportional set size (PSS, shared pages split fairly) per session; then
  each is stopped (its QR loop cannot end: the host is killed) and timed;
* linked: `--linked` sessions with credentials on disk restored at the worker's stagger
  (50 ms apart), until every one is CONNECTED; memory per session from the shared hosts'
  PSS; then all stopped, each timed.

    .venv/bin/python -m bench.whatsmeow_sessions [--linked 200] [--unlinked 10] [--per-host 25]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # for bench.common and tests.contract.whatsmeow_fake
from bench.common import pct  # noqa: E402

STAGGER = 0.05  # the worker's restore_stagger


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values] or [0.0]
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(pct(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
    }


FAKE = (
    "import sys, time\n"
    "from tests.contract.whatsmeow_fake import FakeWhatsApp\n"
    "net = FakeWhatsApp(qr_first_ttl=600, qr_ttl=600).serve()\n"
    "print(net.address, flush=True)\n"
    "sys.stdin.read()\n"
)


def store_device(path: Path, user: str) -> None:
    """What whatsmeow's store holds once a device is linked (as the fake reads it)."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE IF NOT EXISTS whatsmeow_device (jid TEXT PRIMARY KEY)")
        db.execute("INSERT INTO whatsmeow_device VALUES (?)", (f"{user}:7@s.whatsapp.net",))


async def run(address: str, linked: int, unlinked: int, per_host: int) -> dict[str, Any]:
    from zapgate.domain.events import EngineEvent
    from zapgate.domain.state import SessionState as S
    from zapgate.engines import EngineBackends, build_engine
    from zapgate.engines.backends import WhatsmeowConfig, WhatsmeowRuntime
    from zapgate.engines.base import EngineOptions
    from zapgate.engines.whatsmeow import WhatsmeowEngine
    from zapgate.jsonfile import atomic_write_json

    logging.basicConfig(level=logging.WARNING)
    runtime = WhatsmeowRuntime(
        WhatsmeowConfig(
            sessions_per_host=per_host,
            client_factory="tests.contract.whatsmeow_fake:host_client",
            host_env={"FAKE_WHATSAPP_ADDRESS": address, "PYTHONPATH": str(ROOT.parent)},
        )
    )
    backends = EngineBackends(whatsmeow=runtime)
    tmp = Path(tempfile.mkdtemp(prefix="zapgate-bench-wa-"))
    options = EngineOptions(qr_first_ttl=600, qr_ttl=600)

    async def ignore(_: EngineEvent) -> None:
        return None

    def engine(client_id: str) -> WhatsmeowEngine:
        e = build_engine(
            "whatsmeow",
            client_id=client_id,
            session_dir=tmp / client_id,
            emit=ignore,
            options=options,
            backends=backends,
        )
        assert isinstance(e, WhatsmeowEngine)
        e.probe_target = None
        return e

    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - t0 - 0.01)

    tick = asyncio.create_task(ticker())

    async def wait_all(engines: list[WhatsmeowEngine], state: S, within: float) -> None:
        deadline = time.monotonic() + within
        while not all(e.state is state for e in engines):
            if time.monotonic() > deadline:
                counts: dict[str, int] = {}
                for e in engines:
                    counts[e.state.value] = counts.get(e.state.value, 0) + 1
                raise RuntimeError(f"not all {state}: {counts}")
            await asyncio.sleep(0.05)

    def hosts_pss() -> tuple[int, float]:
        hosts = [h for h in runtime.pool().hosts if h.pid]
        return len(hosts), sum(pss_mb(h.pid) for h in hosts if h.pid)

    # -- unlinked: a host each -----------------------------------------------------------------
    waiting = [engine(f"q{i}-wa") for i in range(unlinked)]
    t0 = time.perf_counter()
    for e in waiting:
        await e.start()
    await wait_all(waiting, S.SCAN_QR, 120)
    unlinked_start_s = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    n_unlinked_hosts, unlinked_pss = hosts_pss()
    stops_unlinked = []
    for e in waiting:
        t1 = time.perf_counter()
        await e.stop()
        stops_unlinked.append(time.perf_counter() - t1)

    # -- linked: restored from credentials on disk, sharing hosts ------------------------------
    restored = []
    for i in range(linked):
        e = engine(f"l{i}-wa")
        e.session_dir.mkdir(parents=True)
        user = f"55119{i:08d}"
        store_device(e.store_path, user)
        atomic_write_json(e.device_path, {"user": user, "device": 7, "server": "s.whatsapp.net"})
        restored.append(e)
    lags.clear()
    t2 = time.perf_counter()
    for e in restored:
        await e.start()
        await asyncio.sleep(STAGGER)
    await wait_all(restored, S.CONNECTED, 600)
    restore_s = time.perf_counter() - t2
    lag_restore = summary_ms(lags)
    await asyncio.sleep(1.0)
    n_linked_hosts, linked_pss = hosts_pss()
    stops_linked = []
    t3 = time.perf_counter()
    for e in restored:
        t4 = time.perf_counter()
        await e.stop()
        stops_linked.append(time.perf_counter() - t4)
    stop_all_linked_s = time.perf_counter() - t3
    await runtime.aclose()
    done.set()
    await tick
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "sessions_per_host": per_host,
        "unlinked_sessions": unlinked,
        "unlinked_hosts": n_unlinked_hosts,
        "unlinked_start_to_scan_qr_s": round(unlinked_start_s, 2),
        "pss_per_unlinked_session_mb": round(unlinked_pss / max(unlinked, 1), 1),
        "stop_unlinked": summary_ms(stops_unlinked),
        "linked_sessions": linked,
        "linked_hosts": n_linked_hosts,
        "restore_linked_s": round(restore_s, 2),
        "restore_floor_s": round(linked * STAGGER, 2),
        "pss_per_linked_session_mb": round(linked_pss / max(linked, 1), 2),
        "pss_linked_hosts_total_mb": round(linked_pss, 1),
        "stop_linked": summary_ms(stops_linked),
        "stop_all_linked_s": round(stop_all_linked_s, 2),
        "worker_loop_lag_during_restore": lag_restore,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--linked", type=int, default=200)
    ap.add_argument("--unlinked", type=int, default=10)
    ap.add_argument("--per-host", type=int, default=25)
    args = ap.parse_args()
    # The fake WhatsApp in a process of its own: this process plays the worker, and, like
    # a real worker, never loads neonize.
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE],
        cwd=ROOT.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    try:
        address = fake.stdout.readline().strip()
        result = asyncio.run(run(address, args.linked, args.unlinked, args.per_host))
    finally:
        fake.terminate()
        fake.wait()
    print(json.dumps(result, indent=2))
    out = ROOT / "results" / "whatsmeow_sessions.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
