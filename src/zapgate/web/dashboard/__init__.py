"""The dashboard: server-rendered pages (Jinja2 + htmx) where a user signs up, connects
their WhatsApp by scanning a QR code, sends a test message and manages API keys."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from zapgate import i18n
from zapgate.errors import CsrfFailed, GatewayError
from zapgate.web.context import AppContext
from zapgate.web.dashboard.render import STATIC_DIR, Dashboard, Page, load_page
from zapgate.web.dashboard.security import LoginLimiter, resolve_secret_key
from zapgate.web.dashboard.views import router
from zapgate.web.dashboard.views.deps import SignInRequired

logger = logging.getLogger(__name__)

__all__ = ["install_dashboard", "start_dashboard"]


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith(("/v1/", "/internal/")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept or request.headers.get("hx-request") == "true"


async def _page_for(request: Request) -> Page | None:
    page = getattr(request.state, "page", None)
    if isinstance(page, Page):
        return page
    try:
        return await load_page(request)
    except Exception:  # the error page must not fail in turn
        logger.exception("dashboard: could not load the page state for an error page")
        return None


async def render_error(request: Request, err: GatewayError) -> Response | None:
    """An HTML page for an error met by a browser; None lets the JSON shape answer."""
    if not _wants_html(request) or not hasattr(request.app.state, "dashboard"):
        return None
    page = await _page_for(request)
    if page is None:
        return None
    if page.is_htmx and err.status < 500:
        # htmx leaves a 4xx response unswapped; a short fragment in a 200 shows it.
        return page.render("partials/error_fragment.html", error=page.error_text(err), err=err)
    # A refused form (CSRF) is not "for administrators": it says what happened.
    forbidden = err.status == 403 and not isinstance(err, CsrfFailed)
    template = "forbidden.html" if forbidden else "error.html"
    return page.render(template, status=err.status, err=err, error=page.error_text(err))


def install_dashboard(app: FastAPI) -> None:
    """Routes, static files and the error pages; state is built by start_dashboard."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.state.html_error_renderer = render_error

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        page = await load_page(request)
        return page.redirect("/login")


def start_dashboard(app: FastAPI, ctx: AppContext) -> None:
    """Called from the app's lifespan once the context exists."""
    secret = resolve_secret_key(ctx.settings, ctx.settings.data_dir.resolve())
    app.state.dashboard = Dashboard.build(ctx, secret)
    app.state.login_limiter = LoginLimiter()
    # Load the catalogs now: a broken .po file should stop start-up, not a page view.
    for lang in i18n.SUPPORTED:
        i18n.catalog(lang)
