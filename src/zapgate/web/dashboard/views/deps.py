"""What every dashboard view depends on: the page state, sign-in and the CSRF check."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends

from zapgate.domain.models import User
from zapgate.errors import CsrfFailed
from zapgate.web.dashboard.render import Page, load_page
from zapgate.web.dashboard.security import CSRF_FIELD, CSRF_HEADER

logger = logging.getLogger(__name__)


class SignInRequired(Exception):
    """Raised by pages that need a signed-in user; answered with a redirect to /login."""


PageDep = Annotated[Page, Depends(load_page)]


async def signed_in(page: PageDep) -> Page:
    if page.user is None:
        raise SignInRequired
    return page


async def csrf_checked(page: PageDep) -> Page:
    token = page.request.headers.get(CSRF_HEADER)
    if token is None:
        form = await page.request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not page.web.check_csrf(token):
        logger.info(
            "dashboard: refused a POST to %s without a valid CSRF token", page.request.url.path
        )
        raise CsrfFailed()
    return page


async def user_post(page: Annotated[Page, Depends(csrf_checked)]) -> Page:
    if page.user is None:
        raise SignInRequired
    return page


UserPage = Annotated[Page, Depends(signed_in)]
UserPost = Annotated[Page, Depends(user_post)]
AnyPost = Annotated[Page, Depends(csrf_checked)]


def _user(page: Page) -> User:
    assert page.user is not None  # signed_in / user_post made sure
    return page.user
