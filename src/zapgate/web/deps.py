"""FastAPI dependencies: the app context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from zapgate.domain.ids import MAX_DB_INT, SESSION_NAME_RE
from zapgate.domain.models import User
from zapgate.errors import Forbidden, Unauthorized
from zapgate.i18n import N_
from zapgate.web.context import AppContext


async def get_ctx(request: Request) -> AppContext:
    # async: FastAPI runs a plain `def` dependency on a worker thread, a hand-off (and a
    # wait for the GIL) on every request for one attribute read.
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]
# A numeric id in a path: 64-bit, positive (larger ones are a 422, never a SQL overflow).
DbId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
# A session name in a path. The pattern is documented here and checked by the service,
# whose `invalid_session_name` error says what a name may contain.
SessionName = Annotated[
    str,
    Path(
        description="Your name for the session",
        examples=["default"],
        json_schema_extra={"pattern": SESSION_NAME_RE.pattern, "minLength": 1, "maxLength": 63},
    ),
]


# The two ways to send an API key, as OpenAPI security schemes. Neither refuses by itself
# (auto_error=False): get_current_user answers a missing or bad key in the usual shape.
bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth",
    auto_error=False,
    description="`Authorization: Bearer KEY` (create one with `zapgate keys create`)",
)
api_key_scheme = APIKeyHeader(
    name="X-Api-Key",
    scheme_name="apiKeyAuth",
    auto_error=False,
    description="`X-Api-Key: KEY`, the same key",
)


async def get_current_user(
    ctx: Ctx,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    x_api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> User:
    key = x_api_key
    if key is None and bearer is not None:
        key = bearer.credentials.strip()
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
