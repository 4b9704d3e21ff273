"""Benchmark: N whatsmeow sessions in one worker, offline. Memory per session and how
responsive the worker's event loop stays while they start and retry.

One process hosts a real `Worker` (the same class `zapgate worker` runs) and serves its
internal API with uvicorn on 127.0.0.1. Every session uses the real neonize/Go core, which
dials WhatsApp through a SOCKS5 proxy on loopback that refuses every CONNECT: each session
goes to DISCONNECTED ("cannot reach web.whatsapp.com ...") and retries with backoff, and
not one packet leaves the machine. Meanwhile:

* a ticker task measures event-loop lag (how late a 10 ms sleep wakes up), and
* a thread sends `GET /healthz` to the worker over HTTP every 50 ms and times it.

Prints memory per session (RSS growth / N), threads, loop lag and /healthz latency
(p50/p99/max), and writes bench/results/whatsmeow_sessions.json.

    .venv/bin/python bench/whatsmeow_sessions.py [--sessions 200] [--settle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # for tests.contract.whatsmeow_fake.LoopbackSocks
sys.path.insert(0, str(ROOT))
from api_latency import free_port, pct  # noqa: E402
from tests.contract.whatsmeow_fake import LoopbackSocks  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values] or [0.0]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "samples": len(ms),
    }


async def run(n: int, settle: float) -> dict[str, object]:
    # Before neonize is imported: its import calls logging.basicConfig(level=INFO).
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("zapgate").setLevel(logging.ERROR)  # 200 "disconnected" warnings
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per /healthz poll
    socks = await LoopbackSocks().start()
    os.environ["ZAPGATE_WHATSMEOW_PROXY"] = socks.url
    os.environ["ZAPGATE_WHATSMEOW_STORE"] = "sqlite"
    os.environ["ZAPGATE_WHATSMEOW_RECONNECT_BASE"] = "2"
    os.environ["ZAPGATE_WHATSMEOW_MAX_FAILURES"] = "0"

    import zapgate.engines.whatsmeow  # noqa: F401  (load the Go core before measuring)
    from zapgate.config import Settings
    from zapgate.engines import EngineBackends
    from zapgate.engines.backends import WhatsmeowConfig, WhatsmeowRuntime
    from zapgate.worker.app import create_worker_app
    from zapgate.worker.core import Worker

    tmp = Path(tempfile.mkdtemp(prefix="zapgate-bench-wa-"))
    runtime = WhatsmeowRuntime(WhatsmeowConfig.from_settings(Settings()))
    worker = Worker(data_dir=tmp, worker_id="bench", backends=EngineBackends(whatsmeow=runtime))
    await worker.initialize()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_worker_app(worker, token=None, max_body_bytes=1 << 20),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    serve = asyncio.create_task(server.serve(), name="bench:worker-http")
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
        await asyncio.sleep(0.01)

    lags: list[float] = []
    http: list[float] = []
    done = threading.Event()
    measuring = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            if measuring.is_set():
                lags.append(time.perf_counter() - t0 - 0.01)

    def poller() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            while not done.is_set():
                t0 = time.perf_counter()
                client.get("/healthz").raise_for_status()
                http.append(time.perf_counter() - t0)
                time.sleep(0.05)

    tick = asyncio.create_task(ticker(), name="bench:ticker")
    poll = threading.Thread(target=poller, name="bench:poller", daemon=True)
    await asyncio.sleep(0.5)
    rss0, threads0 = rss_mb(), threading.active_count()
    measuring.set()
    poll.start()

    t0 = time.perf_counter()
    for i in range(n):
        await worker.start_session(f"b{i}-wa", f"sessions/b{i}", "whatsmeow")
    start_s = time.perf_counter() - t0
    states = (await worker.health()).states
    lag_start = summary(lags)
    http_start = summary(http)
    await asyncio.sleep(settle)  # sessions sit in DISCONNECTED and retry meanwhile
    rss1, threads1 = rss_mb(), threading.active_count()
    done.set()
    await tick
    poll.join()

    t1 = time.perf_counter()
    await worker.shutdown()
    stop_s = time.perf_counter() - t1
    server.should_exit = True
    await serve
    await socks.aclose()
    return {
        "sessions": n,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "start_all_s": round(start_s, 2),
        "stop_all_s": round(stop_s, 2),
        "states_after_start": states,
        "dial_attempts_seen_by_proxy": len(socks.targets),
        "rss_before_mb": round(rss0, 1),
        "rss_after_mb": round(rss1, 1),
        "rss_per_session_mb": round((rss1 - rss0) / n, 2),
        "threads_before": threads0,
        "threads_after": threads1,
        "loop_lag_while_starting": lag_start,
        "loop_lag_overall": summary(lags),
        "healthz_while_starting": http_start,
        "healthz_overall": summary(http),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to watch after start")
    args = ap.parse_args()
    result = asyncio.run(run(args.sessions, args.settle))
    print(json.dumps(result, indent=2))
    out = ROOT / "results" / "whatsmeow_sessions.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
