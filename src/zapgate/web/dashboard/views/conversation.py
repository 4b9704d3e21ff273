"""The conversation view on a session's page: its chats, the open chat's messages as
WhatsApp shows them (replies, reactions, edits, deletions, media, locations, contacts,
polls), the composer with its reply, the reactions, and the media of a message (for its
owner only). htmx fragments refresh each part; without JavaScript every action is a
plain form or link that comes back to the page."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Response

from zapgate.domain.models import Message, MessageStatus
from zapgate.errors import GatewayError
from zapgate.web.dashboard.render import Page
from zapgate.web.dashboard.service import DEFAULT_SESSION, QUICK_REACTIONS
from zapgate.web.dashboard.views.deps import UserPage, UserPost, _user

router = APIRouter(include_in_schema=False)

# A chat as the page names it: a phone, a LID or a JID.
ChatParam = Annotated[str, Query(max_length=64)]
MessageId = Annotated[str, Path(min_length=1, max_length=128)]
# Media shown inside the page; anything else is a download.
INLINE_MIMES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


def session_url(name: str, **query: str) -> str:
    """The session's page, with `query` (chat, reply_to) when given."""
    base = "/" if name == DEFAULT_SESSION else f"/sessions/{name}"
    params = {k: v for k, v in query.items() if v}
    return f"{base}?{urlencode(params)}" if params else base


async def conversation_context(
    page: Page, name: str, chat: str, reply_to: str, draft: str = ""
) -> dict[str, Any]:
    """What the conversation templates need. `reply_to` (a message id): the composer
    quotes it, and its chat is the one open."""
    user = _user(page)
    reply: Message | None = None
    if reply_to:
        reply = await page.svc.message(user, name, reply_to)
        chat = reply.chat
    return {
        "name": name,
        "convo": await page.svc.conversation(user, name, chat),
        "reply": reply,
        "draft": draft,
        "composer_error": None,
        "quick_reactions": QUICK_REACTIONS,
        "session_url": session_url(name),
    }


@router.get("/ui/sessions/{name}/conversation")
async def conversation(name: str, page: UserPage, chat: ChatParam = "") -> Response:
    context = await conversation_context(page, name, chat, "")
    return page.render("partials/conversation.html", **context)


@router.get("/ui/sessions/{name}/chats")
async def chats(name: str, page: UserPage, chat: ChatParam = "") -> Response:
    context = await conversation_context(page, name, chat, "")
    return page.render("partials/chats.html", **context)


@router.get("/ui/sessions/{name}/thread")
async def thread(name: str, page: UserPage, chat: ChatParam = "") -> Response:
    context = await conversation_context(page, name, chat, "")
    return page.render("partials/thread.html", **context)


@router.get("/ui/sessions/{name}/composer")
async def composer(
    name: str,
    page: UserPage,
    chat: ChatParam = "",
    reply_to: Annotated[str, Query(max_length=128)] = "",
    text: Annotated[str, Query(max_length=4096)] = "",
) -> Response:
    context = await conversation_context(page, name, chat, reply_to, draft=text)
    return page.render("partials/composer.html", **context)


@router.post("/ui/sessions/{name}/messages")
async def send(
    name: str,
    page: UserPost,
    to: Annotated[str, Form(max_length=64)] = "",
    text: Annotated[str, Form(max_length=65_536)] = "",
    reply_to: Annotated[str, Form(max_length=128)] = "",
    composer: Annotated[bool, Form()] = False,
) -> Response:
    """A text from the "send a message" form (`to` typed) or from the composer of the
    open chat (`composer`, maybe a `reply_to`). The conversation then shows the chat."""
    user = _user(page)
    error: GatewayError | None = None
    message: Message | None = None
    try:
        message = await page.svc.send(user, name, to, text, reply_to)
    except GatewayError as exc:
        error = exc
    if not page.is_htmx:
        if error is not None:
            raise error
        assert message is not None
        return page.redirect(session_url(name, chat=message.chat))
    if message is None:
        assert error is not None
        if not composer:
            # Only the form's feedback changes; the open chat stays as it is.
            response = page.render("partials/send_feedback.html", send_error=page.error_text(error))
            response.headers["HX-Reswap"] = "none"
            return response
        try:
            context = await conversation_context(page, name, to, reply_to, draft=text)
        except GatewayError:  # the reply_to was the trouble: the composer drops it
            context = await conversation_context(page, name, to, "", draft=text)
        context["composer_error"] = page.error_text(error)
        return page.render("partials/conversation.html", **context)
    context = await conversation_context(page, name, message.chat, "")
    response = page.render(
        "partials/conversation.html",
        **context,
        feedback=not composer,
        send_queued=message.status is MessageStatus.QUEUED,
    )
    response.headers["HX-Trigger"] = "zapgate:sent"
    return response


@router.post("/ui/sessions/{name}/messages/{message_id}/reaction")
async def react(
    name: str,
    message_id: MessageId,
    page: UserPost,
    emoji: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """React to a message with one of the offered emoji ("" removes the reaction)."""
    user = _user(page)
    try:
        message = await page.svc.react(user, name, message_id, emoji)
    except GatewayError as exc:
        if not page.is_htmx:
            raise
        response = page.render("partials/convo_feedback.html", err=exc)
        response.headers["HX-Reswap"] = "none"
        return response
    if not page.is_htmx:
        return page.redirect(session_url(name, chat=message.chat))
    context = await conversation_context(page, name, message.chat, "")
    return page.render("partials/thread.html", **context)


@router.get("/ui/sessions/{name}/messages/{message_id}/media")
async def media(name: str, message_id: MessageId, page: UserPage) -> Response:
    """A message's media, to its owner: images shown in the page, the rest downloaded;
    never run as a page of ours (sandboxed, not sniffed)."""
    message, data = await page.svc.media(_user(page), name, message_id)
    assert message.media is not None
    fname = message.media.filename or message.id
    inline = message.media.mime in INLINE_MIMES
    disposition = "inline" if inline else "attachment"
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(fname, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, max-age=3600",
    }
    mime = message.media.mime if inline else "application/octet-stream"
    return page.finish(Response(data, media_type=mime, headers=headers))
