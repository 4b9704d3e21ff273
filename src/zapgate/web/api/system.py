"""Health, readiness and the admin views."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from zapgate.web.deps import AdminUser, Ctx
from zapgate.web.schemas.errors import ADMIN
from zapgate.web.schemas.sessions import SessionPublic
from zapgate.web.schemas.system import (
    AdminSession,
    AdminSessionList,
    Health,
    Ready,
    WorkerInfo,
    WorkerList,
)

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", responses={503: {"model": Ready, "description": "Not ready"}})
async def readyz(ctx: Ctx) -> JSONResponse:
    db = "ok"
    try:
        await ctx.admin.ping_database()
    except Exception as exc:
        db = f"error: {type(exc).__name__}"
    workers = {
        w.worker_id: "ok" if w.reachable else f"unreachable: {w.detail}"
        for w in await ctx.admin.workers()
    }
    ready = db == "ok" and all(v == "ok" for v in workers.values())
    body = Ready(status="ready" if ready else "not ready", database=db, workers=workers)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/v1/admin/workers", tags=["admin"], responses=ADMIN)
async def admin_workers(ctx: Ctx, _: AdminUser) -> WorkerList:
    statuses = await ctx.admin.workers()
    items = [WorkerInfo(**dataclasses.asdict(w)) for w in statuses]
    return WorkerList(topology=ctx.topology.value, items=items)


@router.get("/v1/admin/sessions", tags=["admin"], responses=ADMIN)
async def admin_sessions(ctx: Ctx, _: AdminUser) -> AdminSessionList:
    return AdminSessionList(
        items=[
            AdminSession(user_id=s.user_id, **SessionPublic.of(s).model_dump())
            for s in await ctx.admin.sessions()
        ]
    )
