"""The dashboard's routes: thin, server-rendered pages and htmx fragments, one module per tab
(its routes, its page helpers), all assembled here into the one router the app includes."""

from __future__ import annotations

from fastapi import APIRouter

from zapgate.web.dashboard.views import admin, auth, conversation, keys, sessions, sim, webhooks

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(sessions.router)
router.include_router(conversation.router)
router.include_router(sim.router)
router.include_router(keys.router)
router.include_router(webhooks.router)
router.include_router(admin.router)
