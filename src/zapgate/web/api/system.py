"""Health, readiness and the admin views."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from zapgate.domain.models import Route
from zapgate.web.deps import AdminUser, Ctx
from zapgate.web.schemas import (
    AdminSession,
    AdminSessionList,
    Health,
    Ready,
    SessionPublic,
    WorkerInfo,
    WorkerList,
)

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> Health:
    return Health(status="ok")


async def _topology_routes(ctx: Ctx) -> dict[str, Route]:
    """Every worker the topology names: the configured one, plus each worker a session
    is routed to (per-user has one per user)."""
    routes = {ctx.placement.place(1).worker_id: ctx.placement.place(1)}
    for s in await ctx.registry.list_sessions():
        routes.setdefault(s.worker_id, s.route)
    return routes


@router.get("/readyz", responses={503: {"model": Ready}})
async def readyz(ctx: Ctx) -> JSONResponse:
    db = "ok"
    try:
        await ctx.registry.ping()
    except Exception as exc:
        db = f"error: {type(exc).__name__}"
    workers = {}
    for wid, route in (await _topology_routes(ctx)).items():
        ok, detail = await ctx.pool.probe(route)
        workers[wid] = "ok" if ok else f"unreachable: {detail}"
    ready = db == "ok" and all(v == "ok" for v in workers.values())
    body = Ready(status="ready" if ready else "not ready", database=db, workers=workers)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/v1/admin/workers", tags=["admin"])
async def admin_workers(ctx: Ctx, _: AdminUser) -> WorkerList:
    sessions = await ctx.registry.list_sessions()
    items = []
    for wid, route in (await _topology_routes(ctx)).items():
        ok, detail = await ctx.pool.probe(route)
        items.append(
            WorkerInfo(
                worker_id=wid,
                worker_url=route.worker_url,
                port=route.port,
                reachable=ok,
                detail=detail,
                sessions=sum(1 for s in sessions if s.worker_id == wid),
            )
        )
    return WorkerList(topology=ctx.topology.value, items=items)


@router.get("/v1/admin/sessions", tags=["admin"])
async def admin_sessions(ctx: Ctx, _: AdminUser) -> AdminSessionList:
    return AdminSessionList(
        items=[
            AdminSession(user_id=s.user_id, **SessionPublic.of(s).model_dump())
            for s in await ctx.registry.list_sessions()
        ]
    )
