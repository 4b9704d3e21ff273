"""The admin tab (admins only): the workers and every user's sessions."""

from __future__ import annotations

from fastapi import APIRouter, Response

from zapgate.web.dashboard.views.deps import UserPage, _user

router = APIRouter(include_in_schema=False)


@router.get("/admin")
async def admin(page: UserPage) -> Response:
    if not _user(page).is_admin:
        return page.render("forbidden.html", status=403)
    return page.render(
        "admin.html",
        nav="admin",
        tab="workers",
        topology=page.ctx.topology.value,
        placement=page.ctx.placement.describe(page._),
        workers=await page.svc.workers(),
        rows=[],
    )


@router.get("/admin/sessions")
async def admin_sessions(page: UserPage) -> Response:
    if not _user(page).is_admin:
        return page.render("forbidden.html", status=403)
    return page.render(
        "admin.html",
        nav="admin",
        tab="sessions",
        topology=page.ctx.topology.value,
        placement=page.ctx.placement.describe(page._),
        workers=[],
        rows=await page.svc.all_sessions(),
    )
