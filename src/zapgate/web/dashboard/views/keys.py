"""The API keys tab: list, create (the secret shown once) and revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Response

from zapgate.errors import NotFound
from zapgate.i18n import N_
from zapgate.web.dashboard.render import Page
from zapgate.web.dashboard.views.deps import UserPage, UserPost, _user
from zapgate.web.deps import DbId

router = APIRouter(include_in_schema=False)


async def _keys_page(page: Page, status: int = 200, **extra: Any) -> Response:
    keys = await page.svc.api_keys(_user(page))
    extra.setdefault("new_key", None)
    extra.setdefault("notice", None)
    return page.render("keys.html", status=status, nav="keys", keys=keys, **extra)


@router.get("/keys")
async def keys(page: UserPage) -> Response:
    query = page.request.query_params
    if query.get("revoked") == "1":
        return await _keys_page(page, notice=page._("The key was revoked."))
    token = query.get("new")
    fresh = page.svc.new_keys.take(_user(page).id, token) if token else None
    if fresh is not None:
        return await _keys_page(page, new_key=fresh[1], new_key_name=fresh[0])
    return await _keys_page(page)


@router.post("/keys")
async def create_key(page: UserPost, name: Annotated[str, Form(max_length=200)] = "") -> Response:
    user = _user(page)
    key, secret = await page.svc.create_api_key(user, name)
    # Post/redirect/get: a reload of the page must not create a second key.
    return page.redirect(f"/keys?new={page.svc.new_keys.put(user.id, key.name, secret)}")


@router.post("/keys/{key_id}/revoke")
async def revoke_key(key_id: DbId, page: UserPost) -> Response:
    if not await page.svc.revoke_api_key(_user(page), key_id):
        raise NotFound(N_("There is no such API key."))
    return page.redirect("/keys?revoked=1")
