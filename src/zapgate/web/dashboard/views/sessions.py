"""The home tab: a session's page, its QR card and its actions (the conversation view
on it: views/conversation.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Response

from zapgate.errors import GatewayError, WorkerUnreachable
from zapgate.web.dashboard.render import Page
from zapgate.web.dashboard.service import DEFAULT_SESSION, SessionView
from zapgate.web.dashboard.views.conversation import ChatParam, conversation_context
from zapgate.web.dashboard.views.deps import UserPage, UserPost, _user

router = APIRouter(include_in_schema=False)


async def _view(page: Page, name: str) -> SessionView:
    return await page.svc.view(_user(page), name)


ReplyParam = Annotated[str, Query(max_length=128)]


async def _session_page(page: Page, name: str, chat: str, reply_to: str) -> Response:
    user = _user(page)
    view = await _view(page, name)
    sessions = await page.ctx.sessions.list_for(user)
    return page.render(
        "home.html",
        nav="home",
        view=view,
        sessions=sessions,
        **await conversation_context(page, name, chat, reply_to),
        card_error=None,
        send_error=None,
        sim_error=None,
        sim_ok=None,
    )


@router.get("/")
async def home(page: UserPage, chat: ChatParam = "", reply_to: ReplyParam = "") -> Response:
    return await _session_page(page, DEFAULT_SESSION, chat, reply_to)


@router.get("/sessions/{name}")
async def session_page(
    name: str, page: UserPage, chat: ChatParam = "", reply_to: ReplyParam = ""
) -> Response:
    return await _session_page(page, name, chat, reply_to)


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
