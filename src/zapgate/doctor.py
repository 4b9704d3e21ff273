"""`zapgate doctor`: checks the configuration, the database and every worker the topology
names, and says what is wrong and how to fix it. Exit code 0 only when all is fine."""

from __future__ import annotations

from collections.abc import Callable

from zapgate.config import Settings, Topology
from zapgate.domain.models import Route
from zapgate.errors import GatewayError
from zapgate.registry import Registry
from zapgate.topology.placement import build_placement
from zapgate.topology.pool import WorkerPool

Echo = Callable[[str], object]


class _Skipped(Exception):
    """A check that already reported why it could not run."""


async def run(settings: Settings, topology: Topology, echo: Echo) -> bool:
    ok = True

    def good(msg: str) -> None:
        echo(f"[ok]   {msg}")

    def bad(msg: str, hint: str) -> None:
        nonlocal ok
        ok = False
        echo(f"[FAIL] {msg}")
        echo(f"       fix: {hint}")

    mode = "production" if settings.is_production else "development"
    echo(f"zapgate doctor: {mode}, topology {topology.value}")
    try:
        settings.validate_for_start(topology)
        good("configuration")
    except GatewayError as err:
        bad(f"configuration: {err.error}", err.hint)

    placement = build_placement(settings, topology)
    routes: dict[str, Route] = {}
    if topology is not Topology.EMBEDDED:
        routes[placement.place(1).worker_id] = placement.place(1)
    registry: Registry | None = None
    data_dir = settings.data_dir.resolve()
    try:
        if settings.database_url is None and not data_dir.is_dir():
            # doctor only looks: creating ./data wherever it was run from would hide that
            # it was run from the wrong directory (or with the wrong ZAPGATE_DATA_DIR).
            echo(f"[warn] data directory {data_dir} does not exist yet")
            echo(
                "       hint: zapgate creates it on its first start; if zapgate has run "
                "before, run doctor from the directory you start it in, or set ZAPGATE_DATA_DIR"
            )
            raise _Skipped
        registry = await Registry.open(settings.resolved_database_url, migrate=False)
        await registry.ping()
        rev, head = await registry.revision(), registry.head_revision()
        if rev is None:
            good(
                f"database ({registry.dialect}) reachable and empty: zapgate creates its "
                "tables when it starts (or run `zapgate migrate`)"
            )
        elif rev == head:
            good(f"database ({registry.dialect}) at revision {rev}")
        else:
            bad(
                f"database ({registry.dialect}) at revision {rev}, code expects {head}",
                "run `zapgate migrate`",
            )
        if topology is not Topology.EMBEDDED and rev == head:
            for s in await registry.sessions.list():
                want = placement.place(s.user_id)
                routes.setdefault(want.worker_id, want)
                if want != s.route:
                    where = "the embedded worker" if s.port is None else f"port {s.port}"
                    echo(
                        f"[info] session {s.label} is on {where}; it will move to "
                        f"{want.worker_url} when the web tier starts"
                    )
    except _Skipped:
        pass
    except Exception as exc:
        bad(
            f"database: {type(exc).__name__}: {exc}",
            "check ZAPGATE_DATABASE_URL (or ZAPGATE_DATA_DIR for SQLite)",
        )
    finally:
        if registry is not None:
            await registry.close()

    pool = WorkerPool(settings, placement)
    try:
        for route in routes.values():
            reachable, detail = await pool.probe(route)
            if reachable:
                good(f"worker {route.worker_url} (port {route.port}): {detail}")
            else:
                bad(
                    f"worker {route.worker_url} (port {route.port}) not reachable: {detail}",
                    placement.unreachable_hint(route, production=settings.is_production),
                )
    finally:
        await pool.aclose()
    if topology is Topology.EMBEDDED:
        good("embedded topology: the worker runs inside `zapgate serve`")
    mode = settings.doctor_whatsapp.strip().lower()
    if settings.engine == "whatsmeow" and mode != "off":
        reachable, detail = await whatsapp_reachable(settings)
        if reachable:
            good(f"WhatsApp: {detail}")
        elif mode == "require":
            bad(f"WhatsApp: {detail}", _WHATSAPP_HINT)
        else:
            # Informational by default: sessions retry by themselves when the network
            # comes back, so an offline machine is not a broken configuration.
            echo(f"[warn] WhatsApp: {detail}")
            echo(
                f"       hint: {_WHATSAPP_HINT} (ZAPGATE_DOCTOR_WHATSAPP=require makes this fatal)"
            )
    return ok


_WHATSAPP_HINT = (
    "allow outbound TCP 443 to web.whatsapp.com (or set ZAPGATE_WHATSMEOW_PROXY); "
    "until then whatsmeow sessions stay DISCONNECTED and retry"
)


async def whatsapp_reachable(settings: Settings, wait: float = 5.0) -> tuple[bool, str]:
    """Can this machine open a TCP connection to WhatsApp's websocket host (or to the
    configured proxy)? Returns (reachable, what was checked and what happened)."""
    import asyncio
    from urllib.parse import urlsplit

    host, port, what = "web.whatsapp.com", 443, "web.whatsapp.com:443"
    if settings.whatsmeow_proxy:
        parts = urlsplit(settings.whatsmeow_proxy)
        default = 1080 if parts.scheme.startswith("socks") else 8080
        host, port = parts.hostname or "", parts.port or default
        what = f"proxy {host}:{port}"
    try:
        async with asyncio.timeout(wait):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return False, f"{what} not reachable: timed out after {wait:.0f}s"
    except OSError as exc:
        return False, f"{what} not reachable: {exc.strerror or exc}"
    writer.close()
    return True, f"{what} reachable"
