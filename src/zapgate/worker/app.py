"""The worker's internal HTTP API, protected by ZAPGATE_WORKER_TOKEN. Routes are thin:
each one calls the `Worker` method of the same name."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Response

from zapgate.errors import Unauthorized
from zapgate.web.errors import install_error_handlers
from zapgate.web.limits import BodyLimitMiddleware
from zapgate.worker.core import Worker
from zapgate.worker.schemas import (
    JournalPage,
    PairCodeIn,
    PairCodeOut,
    SendIn,
    SendOut,
    SessionSpec,
    SessionStatus,
    SimPhoneSendIn,
    SimScanIn,
    WorkerHealth,
)


def create_worker_app(worker: Worker, *, token: str | None, max_body_bytes: int) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await worker.initialize()
        try:
            yield
        finally:
            await worker.shutdown()

    async def check_token(
        x_zapgate_worker_token: Annotated[str | None, Header()] = None,
    ) -> None:
        if token and not hmac.compare_digest(x_zapgate_worker_token or "", token):
            raise Unauthorized(
                "missing or wrong worker token",
                hint="Set the same ZAPGATE_WORKER_TOKEN on the web tier and the worker.",
            )

    app = FastAPI(
        title="zapgate worker (internal)", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    r = APIRouter(prefix="/internal", dependencies=[Depends(check_token)])

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "worker_id": worker.worker_id}

    @r.get("/health")
    async def health() -> WorkerHealth:
        return await worker.health()

    @r.put("/sessions/{client_id}")
    async def start(client_id: str, spec: SessionSpec) -> SessionStatus:
        return await worker.start_session(client_id, spec.session_dir, spec.engine)

    @r.get("/sessions/{client_id}")
    async def status(client_id: str) -> SessionStatus:
        return await worker.status(client_id)

    @r.post("/sessions/{client_id}/stop")
    async def stop(client_id: str) -> SessionStatus:
        return await worker.stop_session(client_id)

    @r.post("/sessions/{client_id}/logout")
    async def logout(client_id: str) -> SessionStatus:
        return await worker.logout_session(client_id)

    @r.delete("/sessions/{client_id}", status_code=204)
    async def delete(client_id: str) -> Response:
        await worker.delete_session(client_id)
        return Response(status_code=204)

    @r.post("/sessions/{client_id}/pair-code")
    async def pair_code(client_id: str, body: PairCodeIn) -> PairCodeOut:
        return PairCodeOut(code=await worker.pair_code(client_id, body.phone))

    @r.post("/sessions/{client_id}/messages")
    async def send(client_id: str, body: SendIn) -> SendOut:
        return SendOut(id=await worker.send_text(client_id, body.message_id, body.to, body.text))

    @r.get("/events")
    async def events(
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        wait: Annotated[float, Query(ge=0, le=30)] = 0.0,
    ) -> JournalPage:
        return await worker.events(after, limit, wait)

    @r.post("/sim/scan")
    async def sim_scan(body: SimScanIn) -> dict[str, str]:
        return {"device_id": await worker.sim_scan(body.qr, body.phone)}

    @r.post("/sim/phones/{phone}/messages")
    async def sim_phone_send(phone: str, body: SimPhoneSendIn) -> dict[str, str]:
        return {"id": await worker.sim_phone_send(phone, body.to, body.text)}

    app.include_router(r)
    return app
