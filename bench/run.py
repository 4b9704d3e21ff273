"""`make bench`: every benchmark, one after another (each needs the machine to itself),
then bench/results/latest.json (flat, numbers only), the table of figures next to their
targets and limits, and bench/results/send_latency.png (send latency against load).

    python -m bench.run [--quick] [--only send --only webhooks ...]

`--quick` (`make bench QUICK=1`, run by CI) uses small counts and finishes in under a
minute; it checks that every benchmark still runs. A benchmark that crashes is reported
and the others still run; the exit status is 1 if any crashed. A missed target never
fails the run: the figures are the result.

Not included: bench/whatsmeow_sessions.py (real whatsmeow engines, needs neonize and
minutes), run it alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

from bench import api_latency, get_or_create, memory, report, send, webhooks
from bench.common import RESULTS, Bench, Figures, run_async, write_json

BENCHMARKS: dict[str, Callable[[Bench], Awaitable[Figures]]] = {
    "send": send.run,
    "webhooks": webhooks.run,
    "get_or_create": get_or_create.run,
    "api_latency": api_latency.run,
    "memory": memory.run,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts, under a minute")
    ap.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="repeatable")
    args = ap.parse_args()
    chosen = args.only or list(BENCHMARKS)
    t0 = time.perf_counter()
    figures: Figures = {
        "cpu_count": float(os.cpu_count() or 0),
        "quick": float(args.quick),
        # Other work on the machine skews every figure: what was running before this run.
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
    }
    crashed: list[str] = []
    with Bench.session(args.quick) as bench:

        async def all_of_them() -> None:
            for name in chosen:
                with bench.phase(name):
                    try:
                        figures.update(await BENCHMARKS[name](bench))
                    except Exception:
                        crashed.append(name)
                        bench.console.print(f"[red]{name} crashed:[/]\n{traceback.format_exc()}")

        run_async(all_of_them())
    figures["bench_duration_s"] = round(time.perf_counter() - t0, 1)
    write_json(RESULTS / "latest.json", figures)
    png = report.chart(figures, RESULTS / "send_latency.png")
    report.table(bench.console, figures, bench.notes)
    bench.console.print(
        f"written bench/results/latest.json{', bench/results/send_latency.png' if png else ''}"
        f" in {figures['bench_duration_s']:.0f} s"
    )
    if crashed:
        bench.console.print(f"[red]crashed: {', '.join(crashed)}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
