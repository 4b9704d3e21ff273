"""Sign in, sign up, sign out and the language switch."""

from __future__ import annotations

import logging
import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response

from zapgate import i18n
from zapgate.errors import TooManyRequests, UserExists
from zapgate.web.dashboard.views.deps import AnyPost, PageDep

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MIN_PASSWORD = 8


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login")
async def login_form(page: PageDep) -> Response:
    if page.user is not None:
        return page.redirect("/")
    return page.render("login.html", email="", error=None)


@router.post("/login")
async def login(
    page: AnyPost,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    limiter = page.request.app.state.login_limiter
    ip = _client_ip(page.request)
    wait = limiter.retry_after(ip, email)
    if wait:
        err = TooManyRequests(retry_after=wait)
        logger.warning("dashboard: sign-in rate limit hit for %s", ip)
        response = page.render(
            "login.html", status=429, email=email, error=page.error_text(err), limited=True
        )
        response.headers["Retry-After"] = str(wait)
        return response
    user = await page.ctx.accounts.verify_password(email, password) if email else None
    if user is None:
        limiter.failed(ip, email)
        return page.render(
            "login.html", status=401, email=email, error=page._("Wrong e-mail or password.")
        )
    limiter.succeeded(ip, email)
    page.web.sign_in(user.id, await page.ctx.accounts.open_dashboard_session(user))
    logger.info("dashboard: user %s signed in", user.id)
    return page.redirect("/")


@router.get("/signup")
async def signup_form(page: PageDep) -> Response:
    if not page.ctx.settings.signup_enabled:
        return page.render("closed.html", status=403)
    if page.user is not None:
        return page.redirect("/")
    return page.render("signup.html", email="", error=None)


@router.post("/signup")
async def signup(
    page: AnyPost,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    if not page.ctx.settings.signup_enabled:
        return page.render("closed.html", status=403)
    email = email.strip()
    error: str | None = None
    if not EMAIL_RE.match(email):
        error = page._("Enter a valid e-mail address.")
    elif len(password) < MIN_PASSWORD:
        error = page._("The password needs at least 8 characters.")
    if error is None:
        try:
            user = await page.svc.sign_up(email, password)
        except UserExists:
            error = page._("There is already an account with this e-mail. Sign in instead.")
        else:
            page.web.sign_in(user.id, await page.ctx.accounts.open_dashboard_session(user))
            if page.web.lang:
                await page.svc.set_lang(user, page.web.lang)
            return page.redirect("/")
    return page.render("signup.html", status=400, email=email, error=error)


@router.post("/logout")
async def logout(page: AnyPost) -> Response:
    if page.user is not None:
        logger.info("dashboard: user %s signed out", page.user.id)
    if page.web.sid is not None:
        # Ended on the server: a copy of this cookie (CSRF token included) is dead too.
        await page.ctx.accounts.close_dashboard_session(page.web.sid)
    page.web.sign_out()
    return page.redirect("/login")


@router.post("/lang")
async def set_lang(page: AnyPost, lang: Annotated[str, Form(max_length=16)] = "") -> Response:
    chosen = i18n.normalize_lang(lang)
    if page.user is not None:
        await page.svc.set_lang(page.user, chosen)
    else:
        page.web.lang = chosen
        page.web.dirty = True
    back = page.request.headers.get("referer", "/")
    parts = urlsplit(back)
    # Only back to a page of this site: a path, never another host.
    target = parts.path if parts.path.startswith("/") and not parts.path.startswith("//") else "/"
    if target.startswith("/ui/") or target in ("/lang", "/logout"):
        target = "/"
    return page.redirect(target)
