"""The figures as a table (each next to its target and the limit measured in the same run)
and the chart of send latency against offered load."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.common import Figures

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    label: str
    unit: str
    # The target, e.g. (">=", 2000): the figure is compared, never enforced.
    target: tuple[str, float] | None = None
    # What bounds the figure, measured (or derived) in the same run.
    limit: Callable[[Figures], str | None] | None = None


def _fmt(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.1f}"


def _figure(key: str, unit: str, what: str = "") -> Callable[[Figures], str | None]:
    def show(f: Figures) -> str | None:
        return None if key not in f else f"{what}{_fmt(f[key])} {unit}".strip()

    return show


def _restore_floor(f: Figures) -> str | None:
    n = f.get("restore_sessions")
    stagger = f.get("restore_stagger_s")
    if n is None or stagger is None:
        return None
    return f"{_fmt(n * stagger)} s floor: {_fmt(n)} x {stagger * 1000:.0f} ms restore stagger"


ROWS: tuple[Row, ...] = (
    Row("cpu_count", "CPU cores", ""),
    Row(
        "send_msgs_per_s",
        "sends accepted (embedded, SQLite, 32 conns)",
        "msg/s",
        (">=", 2000),
        _figure("bare_req_per_s", "req/s", "bare ASGI "),
    ),
    Row(
        "send_p99_ms",
        "send p99 (embedded, SQLite, 32 conns)",
        "ms",
        ("<", 100),
        _figure("bare_p99_ms", "ms", "bare ASGI "),
    ),
    Row(
        "send_vs_bare_ratio",
        "sends / bare endpoint",
        "",
        None,
        lambda f: "1 = as fast as the bare endpoint",
    ),
    Row(
        "send_sent_msgs_per_s",
        "sends sent on (run + queue drain)",
        "msg/s",
        None,
        _figure("send_msgs_per_s", "msg/s", "accepted "),
    ),
    Row(
        "send_msgs_per_s_postgres",
        "sends accepted (embedded, PostgreSQL)",
        "msg/s",
        (">=", 1000),
        _figure("bare_req_per_s", "req/s", "bare ASGI "),
    ),
    Row("send_p99_ms_postgres", "send p99 (PostgreSQL)", "ms", None, _figure("bare_p99_ms", "ms")),
    Row(
        "send_msgs_per_s_shared",
        "sends accepted (shared: web + worker)",
        "msg/s",
        None,
        _figure("bare_req_per_s", "req/s", "bare ASGI "),
    ),
    Row("send_p99_ms_shared", "send p99 (shared)", "ms", None, _figure("bare_p99_ms", "ms")),
    Row("bare_req_per_s", "bare ASGI endpoint, same stack (32 conns)", "req/s"),
    Row(
        "webhook_deliveries_per_s",
        "webhook deliveries sustained",
        "/s",
        (">=", 1000),
        _figure("webhook_receiver_req_per_s", "req/s", "receiver alone "),
    ),
    Row(
        "webhook_deliveries_per_s_one_hook",
        "webhook deliveries, one webhook",
        "/s",
        None,
        _figure("webhook_receiver_req_per_s", "req/s", "receiver alone "),
    ),
    Row(
        "webhook_p99_ms",
        "webhook p99 enqueue→delivery at 500/s",
        "ms",
        ("<", 250),
        _figure("webhook_offered_per_s", "events/s", "offered "),
    ),
    Row(
        "rss_per_session_kb_1k",
        "RSS per hosted sim session (small count)",
        "KB",
        ("<=", 30),
        _figure("memory_sessions_small", "sessions"),
    ),
    Row(
        "rss_per_session_kb",
        "RSS per hosted sim session (large count)",
        "KB",
        ("<=", 30),
        _figure("memory_sessions", "sessions"),
    ),
    Row("restore_10k_s", "restore of the linked sessions", "s", ("<", 10), _restore_floor),
    Row(
        "get_or_create_p99_ms",
        "get-or-create p99 (worst of existing/new)",
        "ms",
        ("<", 5),
        _figure("bare_c1_p99_ms", "ms", "bare ASGI, 1 conn: "),
    ),
)


def table(console: Console, figures: Figures, notes: Sequence[str] = ()) -> None:
    quick = " (QUICK: small counts, no verdicts implied)" if figures.get("quick") else ""
    t = Table(title=f"zapgate benchmarks{quick}", title_justify="left")
    for column in ("figure", "key", "value", "target", "limit in this run", ""):
        t.add_column(column)
    for row in ROWS:
        if row.key not in figures:
            continue
        value = figures[row.key]
        target = verdict = ""
        if row.target is not None:
            op, bound = row.target
            target = f"{op} {_fmt(bound)} {row.unit}".strip()
            verdict = "[green]met[/]" if _OPS[op](value, bound) else "[red]missed[/]"
        limit = (row.limit(figures) if row.limit is not None else None) or ""
        t.add_row(row.label, row.key, f"{_fmt(value)} {row.unit}".strip(), target, limit, verdict)
    console.print(t)
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")


_LEVEL = re.compile(r"^(send|bare)_c(\d+)_(per_s|p50_ms|p99_ms)$")


def chart(figures: Figures, path: Path) -> Path | None:
    """Send latency (p50, p99) and throughput against connections, beside the bare
    endpoint's; None when the figures have no sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple[str, str], dict[int, float]] = {}
    for key, value in figures.items():
        if m := _LEVEL.match(key):
            series.setdefault((m[1], m[3]), {})[int(m[2])] = value
    if not series:
        return None
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"send": "tab:blue", "bare": "tab:gray"}
    names = {"send": "send (embedded, SQLite)", "bare": "bare ASGI endpoint"}
    for who, color in styles.items():
        for stat, dash in (("p50_ms", "-"), ("p99_ms", "--")):
            points = sorted(series.get((who, stat), {}).items())
            if points:
                xs, ys = zip(*points, strict=True)
                lat.plot(xs, ys, dash, marker="o", color=color, label=f"{names[who]} {stat[:3]}")
        points = sorted(series.get((who, "per_s"), {}).items())
        if points:
            xs, ys = zip(*points, strict=True)
            thr.plot(xs, ys, "-", marker="o", color=color, label=names[who])
    levels = sorted({n for points in series.values() for n in points})
    for ax in (lat, thr):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(n) for n in levels])
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("offered load: concurrent connections (closed loop)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    lat.set_ylabel("latency (ms)")
    lat.axhline(100, color="tab:red", lw=0.8, ls=":")
    thr.set_ylabel("requests answered per second")
    thr.axhline(2000, color="tab:red", lw=0.8, ls=":")
    cores = int(figures.get("cpu_count", 0))
    quick = ", QUICK" if figures.get("quick") else ""
    fig.suptitle(
        f"POST /v1/sessions/{{name}}/messages, sim engine, send rate off, {cores} cores{quick}"
        " (red: the issue's targets)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
