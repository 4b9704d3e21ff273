"""/v1/sessions/{name}/messages/{id} actions and /v1/sessions/{name}/chats: thin routes
over MessageService. A message is named by its id or its wa_id; a chat by its phone, LID
or JID (URL-encoded)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from zapgate.domain.ids import parse_cursor
from zapgate.errors import ValidationFailed
from zapgate.i18n import N_
from zapgate.web.deps import Ctx, CurrentUser, SessionName
from zapgate.web.schemas.errors import SESSION, SESSION_ACTION, SESSION_WITH_BODY
from zapgate.web.schemas.messages import (
    ChatList,
    ChatPublic,
    ChatReadOut,
    EditIn,
    MessageList,
    MessagePublic,
    PresenceIn,
    PresenceOut,
    ReactionIn,
)

router = APIRouter(prefix="/v1/sessions", tags=["messages"])

MessageId = Annotated[
    str, Path(min_length=1, max_length=128, description="The message's id or wa_id")
]
ChatId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="A phone (E.164), a LID (<digits>@lid) or a JID, URL-encoded",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200)]
Before = Annotated[str | None, Query(max_length=20)]


def _cursor(before: str | None) -> int | None:
    if before is None:
        return None
    cursor = parse_cursor(before)
    if cursor is None:
        raise ValidationFailed(
            N_("before: not a cursor returned by this API"),
            hint=N_("Pass the 'next' value of the previous page."),
        )
    return cursor


@router.post("/{name}/messages/{message_id}/reaction", responses=SESSION_WITH_BODY)
async def react(
    name: SessionName, message_id: MessageId, body: ReactionIn, ctx: Ctx, user: CurrentUser
) -> MessagePublic:
    """React to a message with one emoji; `""` removes your reaction."""
    return MessagePublic.of(await ctx.messages.react(user, name, message_id, body.emoji), name)


@router.patch("/{name}/messages/{message_id}", responses=SESSION_WITH_BODY)
async def edit(
    name: SessionName, message_id: MessageId, body: EditIn, ctx: Ctx, user: CurrentUser
) -> MessagePublic:
    """Edit a text message this session sent, within 15 minutes of sending (WhatsApp's
    rule); 409 `message_action_refused` says why otherwise."""
    return MessagePublic.of(await ctx.messages.edit(user, name, message_id, body.text), name)


@router.delete("/{name}/messages/{message_id}", responses=SESSION_ACTION)
async def revoke(
    name: SessionName, message_id: MessageId, ctx: Ctx, user: CurrentUser
) -> MessagePublic:
    """Delete a message this session sent, for everyone."""
    return MessagePublic.of(await ctx.messages.revoke(user, name, message_id), name)


@router.post("/{name}/messages/{message_id}/read", responses=SESSION_ACTION)
async def read_message(
    name: SessionName, message_id: MessageId, ctx: Ctx, user: CurrentUser
) -> MessagePublic:
    """Send the read receipt of a received message."""
    return MessagePublic.of(await ctx.messages.read(user, name, message_id), name)


@router.get("/{name}/chats", responses=SESSION)
async def list_chats(
    name: SessionName,
    ctx: Ctx,
    user: CurrentUser,
    limit: Limit = 50,
    before: Before = None,
) -> ChatList:
    """The session's chats, the one with the newest message first."""
    items, nxt = await ctx.messages.chats(user, name, limit=limit, before=_cursor(before))
    return ChatList(
        items=[ChatPublic.of(c, name) for c in items],
        next=str(nxt) if nxt is not None else None,
    )


@router.get("/{name}/chats/{chat}/messages", responses=SESSION)
async def chat_messages(
    name: SessionName,
    chat: ChatId,
    ctx: Ctx,
    user: CurrentUser,
    limit: Limit = 50,
    before: Before = None,
) -> MessageList:
    """One chat's history, newest first (paged as `GET .../messages`)."""
    items, nxt = await ctx.sessions.messages(
        user, name, direction=None, limit=limit, before=_cursor(before), chat=chat
    )
    return MessageList(
        items=[MessagePublic.of(m, name) for m in items],
        next=str(nxt) if nxt is not None else None,
    )


@router.post("/{name}/chats/{chat}/read", responses=SESSION_ACTION)
async def read_chat(name: SessionName, chat: ChatId, ctx: Ctx, user: CurrentUser) -> ChatReadOut:
    """Send read receipts for the chat's unread received messages."""
    address, count = await ctx.messages.read_chat(user, name, chat)
    return ChatReadOut(chat=address, read=count)


@router.post("/{name}/chats/{chat}/presence", responses=SESSION_WITH_BODY)
async def presence(
    name: SessionName, chat: ChatId, body: PresenceIn, ctx: Ctx, user: CurrentUser
) -> PresenceOut:
    """Show typing, recording (a voice note) or paused in the chat."""
    address = await ctx.messages.presence(user, name, chat, body.state)
    return PresenceOut(chat=address, state=body.state)
