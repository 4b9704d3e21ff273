"""The public app: REST v1 over the services, errors in one shape, a body-size guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from zapgate import __version__
from zapgate.config import Settings, Topology
from zapgate.http.errors import install_error_handlers
from zapgate.http.limits import BodyLimitMiddleware
from zapgate.web.api import contacts, messages, sessions, sim, stream, system, webhooks
from zapgate.web.context import AppContext
from zapgate.web.dashboard import install_dashboard, start_dashboard
from zapgate.web.docs import install_docs


def create_app(settings: Settings, topology: Topology) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await AppContext.build(settings, topology)
        app.state.ctx = ctx
        try:
            await ctx.start()
            start_dashboard(app, ctx)
            yield
        finally:
            await ctx.close()

    app = FastAPI(
        title="zapgate",
        version=__version__,
        description="Self-hosted, multi-tenant WhatsApp gateway.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # `/v1/sessions/` is a 404 in the usual shape, not a bodiless 307 to another route.
        redirect_slashes=False,
    )
    install_error_handlers(app, localize=True)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # Media travels in these bodies (base64 JSON or an upload).
        overrides=[
            (r"/v1/sessions/[^/]+/messages(/media)?", settings.media_body_bytes),
            (r"/v1/sim/phones/[^/]+/messages", settings.media_body_bytes),
        ],
    )
    app.include_router(system.router)
    app.include_router(sessions.router)
    app.include_router(messages.router)
    app.include_router(contacts.router)
    app.include_router(stream.router)
    app.include_router(webhooks.router)
    if settings.sim_api_enabled:
        app.include_router(sim.router)
    install_docs(app)
    install_dashboard(app)
    return app
