"""FastAPI dependencies: the app context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from zapgate.domain.ids import MAX_DB_INT
from zapgate.domain.models import User
from zapgate.errors import Forbidden, Unauthorized
from zapgate.i18n import N_
from zapgate.web.context import AppContext


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]
# A numeric id in a path: 64-bit, positive (larger ones are a 422, never a SQL overflow).
DbId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


async def get_current_user(
    ctx: Ctx,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> User:
    key = x_api_key
    if key is None and authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            key = value.strip()
    if not key:
        raise Unauthorized(N_("No API key was sent."))
    if len(key) > 200:
        raise Unauthorized(N_("The API key is not valid."))
    user = await ctx.accounts.authenticate(key)
    if user is None:
        raise Unauthorized(
            N_("The API key is not valid (unknown or revoked)."),
            hint=N_("Create one with `zapgate keys create EMAIL`."),
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden(N_("Only administrators may see this."))
    return user


AdminUser = Annotated[User, Depends(get_admin)]
