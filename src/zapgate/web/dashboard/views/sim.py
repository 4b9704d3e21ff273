"""The simulated phone's panel on the home tab (sim engine only): scan a QR code,
write to the linked number."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response

from zapgate.errors import GatewayError, NotFound
from zapgate.i18n import N_
from zapgate.web.dashboard.service import DEFAULT_SESSION
from zapgate.web.dashboard.views.deps import UserPost, _user
from zapgate.web.dashboard.views.sessions import _after_action

router = APIRouter(include_in_schema=False)


@router.post("/ui/sessions/{name}/sim/scan")
async def sim_scan(
    name: str,
    page: UserPost,
    phone: Annotated[str, Form(max_length=32)] = "",
    qr: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    if not page.ctx.settings.sim_api_enabled:
        raise NotFound(N_("The simulated phone is switched off on this server."))
    error: GatewayError | None = None
    try:
        await page.svc.sim_scan(_user(page), name, qr or None, phone)
    except GatewayError as exc:
        error = exc
    return await _after_action(page, name, error)


@router.post("/ui/sessions/{name}/sim/write")
async def sim_write(
    name: str,
    page: UserPost,
    sender: Annotated[str, Form(max_length=32)] = "",
    text: Annotated[str, Form(max_length=65_536)] = "",
) -> Response:
    if not page.ctx.settings.sim_api_enabled:
        raise NotFound(N_("The simulated phone is switched off on this server."))
    error: str | None = None
    try:
        await page.svc.sim_write(_user(page), name, sender, text)
    except GatewayError as exc:
        error = page.error_text(exc)
    if not page.is_htmx:
        return page.redirect("/" if name == DEFAULT_SESSION else f"/sessions/{name}")
    response = page.render("partials/sim_feedback.html", sim_error=error)
    if error is None:
        response.headers["HX-Trigger"] = "zapgate:simsent"
    return response
