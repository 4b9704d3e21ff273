"""The dashboard's routes: thin, server-rendered pages and htmx fragments."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response

from zapgate import i18n
from zapgate.domain.models import Message, User
from zapgate.errors import (
    CsrfFailed,
    GatewayError,
    NotFound,
    TooManyRequests,
    UserExists,
    ValidationFailed,
    WorkerUnreachable,
)
from zapgate.i18n import N_
from zapgate.web.dashboard.render import Page, load_page
from zapgate.web.dashboard.security import CSRF_FIELD, CSRF_HEADER
from zapgate.web.dashboard.service import (
    DEFAULT_SESSION,
    WEBHOOK_EVENTS,
    SessionView,
    WebhookLog,
)

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MIN_PASSWORD = 8


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


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# -- sign in / sign up / sign out ---------------------------------------------------------------


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
    user = await page.ctx.registry.verify_password(email, password) if email else None
    if user is None:
        limiter.failed(ip, email)
        return page.render(
            "login.html", status=401, email=email, error=page._("Wrong e-mail or password.")
        )
    limiter.succeeded(ip, email)
    page.web.sign_in(user.id)
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
            page.web.sign_in(user.id)
            if page.web.lang:
                await page.svc.set_lang(user, page.web.lang)
            return page.redirect("/")
    return page.render("signup.html", status=400, email=email, error=error)


@router.post("/logout")
async def logout(page: AnyPost) -> Response:
    if page.user is not None:
        logger.info("dashboard: user %s signed out", page.user.id)
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


# -- my whatsapp ----------------------------------------------------------------------------------


async def _view(page: Page, name: str) -> SessionView:
    return await page.svc.view(_user(page), name)


async def _session_page(page: Page, name: str) -> Response:
    user = _user(page)
    view = await _view(page, name)
    sessions = await page.ctx.sessions.list_for(user)
    messages = await page.svc.recent_messages(user, name)
    return page.render(
        "home.html",
        nav="home",
        view=view,
        messages=messages,
        sessions=sessions,
        card_error=None,
        send_error=None,
        sim_error=None,
        sim_ok=None,
    )


@router.get("/")
async def home(page: UserPage) -> Response:
    return await _session_page(page, DEFAULT_SESSION)


@router.get("/sessions/{name}")
async def session_page(name: str, page: UserPage) -> Response:
    return await _session_page(page, name)


def _card(page: Page, view: SessionView, error: str | None = None) -> Response:
    return page.render("partials/card.html", view=view, card_error=error)


@router.get("/ui/sessions/{name}/card")
async def card(name: str, page: UserPage) -> Response:
    return _card(page, await _view(page, name))


async def _after_action(page: Page, name: str, error: GatewayError | None) -> Response:
    if not page.is_htmx:
        return page.redirect("/" if name == DEFAULT_SESSION else f"/sessions/{name}")
    view = await _view(page, name)
    if isinstance(error, WorkerUnreachable) and view.unreachable is None:
        view = SessionView(name=name, exists=view.exists, state=view.state, unreachable=error)
        error = None
    return _card(page, view, page.error_text(error) if error else None)


@router.post("/ui/sessions/{name}/connect")
async def connect(name: str, page: UserPost) -> Response:
    error: GatewayError | None = None
    try:
        await page.svc.connect(_user(page), name)
    except GatewayError as exc:
        error = exc
    return await _after_action(page, name, error)


@router.post("/ui/sessions/{name}/pair")
async def pair(
    name: str, page: UserPost, phone: Annotated[str, Form(max_length=32)] = ""
) -> Response:
    error: GatewayError | None = None
    try:
        await page.svc.pair(_user(page), name, phone)
    except GatewayError as exc:
        error = exc
    return await _after_action(page, name, error)


@router.post("/ui/sessions/{name}/logout")
async def disconnect(name: str, page: UserPost) -> Response:
    error: GatewayError | None = None
    try:
        await page.svc.disconnect(_user(page), name)
    except GatewayError as exc:
        error = exc
    return await _after_action(page, name, error)


def _messages(page: Page, name: str, messages: Sequence[Message], **extra: Any) -> Response:
    return page.render("partials/messages.html", name=name, messages=messages, **extra)


@router.get("/ui/sessions/{name}/messages")
async def messages(name: str, page: UserPage) -> Response:
    return _messages(page, name, await page.svc.recent_messages(_user(page), name))


@router.post("/ui/sessions/{name}/messages")
async def send(
    name: str,
    page: UserPost,
    to: Annotated[str, Form(max_length=32)] = "",
    text: Annotated[str, Form(max_length=65_536)] = "",
) -> Response:
    user = _user(page)
    error: str | None = None
    try:
        await page.svc.send(user, name, to, text)
    except GatewayError as exc:
        error = page.error_text(exc)
    if not page.is_htmx:
        return page.redirect("/" if name == DEFAULT_SESSION else f"/sessions/{name}")
    items = await page.svc.recent_messages(user, name)
    response = _messages(page, name, items, send_error=error, oob_feedback=True)
    if error is None:
        response.headers["HX-Trigger"] = "zapgate:sent"
    return response


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


# -- api keys -------------------------------------------------------------------------------------


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
async def revoke_key(key_id: int, page: UserPost) -> Response:
    if not await page.svc.revoke_api_key(_user(page), key_id):
        raise NotFound(N_("There is no such API key."))
    return page.redirect("/keys?revoked=1")


# -- webhooks -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormError:
    """A service error as a form shows it: translated, the API's field prefix ("url: ")
    replaced by the form's label, without the API-only hint about 'details'."""

    text: str
    hint: str | None
    lead: str | None = None
    field: str | None = None

    @classmethod
    def of(cls, page: Page, err: GatewayError) -> FormError:
        labels = {
            "url": page._("URL"),
            "events": page._("Events"),
            "secret": page._("Signing secret"),
        }
        lead: str | None = None
        field: str | None = None
        if err.errcode == "url_not_allowed":
            lead = page._("This server only sends webhooks to public addresses.")
            field = "url"
        text = page.error_text(err)
        prefix = re.match(r"(url|events|secret): ", text)
        if prefix is not None:
            field = prefix.group(1)
            text = f"{labels[field]}: {text[prefix.end() :]}"
        hint = err.hint if err.hint and err.hint != ValidationFailed.default_hint else None
        return cls(
            text=text,
            hint=page.error_hint(err) if hint else None,
            lead=lead,
            field=field,
        )


async def _webhooks_page(page: Page, status: int = 200, **extra: Any) -> Response:
    hooks = await page.svc.webhooks(_user(page))
    extra.setdefault("new_secret", None)
    extra.setdefault("new_hook", None)
    extra.setdefault("notice", None)
    extra.setdefault("form_error", None)
    extra.setdefault("form", {"url": "", "events": [], "secret": ""})
    return page.render(
        "webhooks.html",
        status=status,
        nav="webhooks",
        webhooks=hooks,
        event_types=WEBHOOK_EVENTS,
        **extra,
    )


@router.get("/webhooks")
async def webhooks(page: UserPage) -> Response:
    query = page.request.query_params
    if query.get("deleted") == "1":
        return await _webhooks_page(page, notice=page._("The webhook was deleted."))
    token = query.get("new")
    fresh = page.svc.new_secrets.take(_user(page).id, token) if token else None
    if fresh is not None:
        hook_id, secret = int(fresh[0]), fresh[1]
        hooks = await page.svc.webhooks(_user(page))
        hook = next((h for h in hooks if h.id == hook_id), None)
        if hook is not None:
            return await _webhooks_page(page, new_secret=secret, new_hook=hook)
    return await _webhooks_page(page)


@router.post("/webhooks")
async def create_webhook(
    page: UserPost,
    url: Annotated[str, Form(max_length=2000)] = "",
    events: Annotated[list[str] | None, Form()] = None,
    secret: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = _user(page)
    chosen = list(events or [])[:10]
    try:
        hook = await page.svc.create_webhook(user, url, chosen, secret)
    except GatewayError as exc:
        if exc.status >= 500:
            raise
        logger.info("dashboard: webhook refused for user %s: %s", user.id, exc.errcode)
        return await _webhooks_page(
            page,
            status=exc.status,
            form_error=FormError.of(page, exc),
            form={"url": url, "events": chosen, "secret": secret},
        )
    # Post/redirect/get: a reload must not create a second webhook; the secret is shown once.
    return page.redirect(
        f"/webhooks?new={page.svc.new_secrets.put(user.id, str(hook.id), hook.secret)}"
    )


def _deliveries(page: Page, log: WebhookLog, **extra: Any) -> Response:
    return page.render("partials/deliveries.html", log=log, **extra)


async def _webhook_page(page: Page, webhook_id: int, status: int = 200, **extra: Any) -> Response:
    log = await page.svc.webhook_log(_user(page), webhook_id)
    extra.setdefault("notice", None)
    extra.setdefault("ping_error", None)
    return page.render(
        "webhook.html", status=status, nav="webhooks", log=log, hook=log.webhook, **extra
    )


@router.get("/webhooks/{webhook_id}")
async def webhook_page(webhook_id: int, page: UserPage) -> Response:
    notice = None
    if page.request.query_params.get("pinged") == "1":
        notice = page._("Test event sent. Its delivery shows up below.")
    return await _webhook_page(page, webhook_id, notice=notice)


@router.get("/ui/webhooks/{webhook_id}/deliveries")
async def webhook_deliveries(webhook_id: int, page: UserPage) -> Response:
    return _deliveries(page, await page.svc.webhook_log(_user(page), webhook_id))


@router.post("/webhooks/{webhook_id}/ping")
async def ping_webhook(webhook_id: int, page: UserPost) -> Response:
    user = _user(page)
    error: GatewayError | None = None
    try:
        await page.svc.ping_webhook(user, webhook_id)
    except NotFound:
        raise
    except GatewayError as exc:
        error = exc
    if not page.is_htmx:
        if error is not None:
            return await _webhook_page(
                page, webhook_id, status=error.status, ping_error=FormError.of(page, error)
            )
        return page.redirect(f"/webhooks/{webhook_id}?pinged=1")
    log = await page.svc.webhook_log(user, webhook_id)
    return _deliveries(
        page, log, oob_feedback=True, ping_error=FormError.of(page, error) if error else None
    )


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(webhook_id: int, page: UserPost) -> Response:
    await page.svc.delete_webhook(_user(page), webhook_id)
    logger.info("dashboard: user %s deleted webhook %s", _user(page).id, webhook_id)
    return page.redirect("/webhooks?deleted=1")


# -- admin ----------------------------------------------------------------------------------------


@router.get("/admin")
async def admin(page: UserPage) -> Response:
    if not _user(page).is_admin:
        return page.render("forbidden.html", status=403)
    return page.render(
        "admin.html",
        nav="admin",
        tab="workers",
        topology=page.ctx.topology.value,
        placement=page.ctx.placement.describe(),
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
        placement=page.ctx.placement.describe(),
        workers=[],
        rows=await page.svc.all_sessions(),
    )
