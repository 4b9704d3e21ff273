"""Acting on messages and chats: reactions, edits, deletes for everyone, read receipts,
presence, the chats list and a chat's history. Each resolves the caller's own session
first (another user's session, or its messages, do not exist for them); the engine acts
first, then the registry records it (which emits the event, once)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from zapgate.domain.content import EDIT_WINDOW_SECONDS, MessageRef
from zapgate.domain.emoji import is_emoji
from zapgate.domain.models import Chat, Message, Session, User
from zapgate.errors import InvalidEmoji, MessageActionRefused, MessageNotFound, ValidationFailed
from zapgate.i18n import N_
from zapgate.registry.messages import ME
from zapgate.services.sessions import SessionService

logger = logging.getLogger(__name__)


def _ref(message: Message) -> MessageRef:
    """How WhatsApp names a sent or received message (1:1 chats: no sender needed)."""
    assert message.wa_id is not None
    return MessageRef(id=message.wa_id, from_me=message.direction == "out")


class MessageService:
    def __init__(self, sessions: SessionService) -> None:
        self.sessions = sessions
        self.registry = sessions.registry

    async def _message(self, user: User, name: str, message_id: str) -> tuple[Session, Message]:
        session = await self.sessions.get(user, name)
        message = await self.registry.messages.find(session.id, message_id)
        if message is None:
            raise MessageNotFound(name=name, message_id=message_id[:80])
        return session, message

    async def get(self, user: User, name: str, message_id: str) -> Message:
        return (await self._message(user, name, message_id))[1]

    async def react(self, user: User, name: str, message_id: str, emoji: str) -> Message:
        """React to a message with `emoji` ("" removes this session's reaction)."""
        if emoji and not is_emoji(emoji):
            raise InvalidEmoji(emoji=emoji[:20])
        session, message = await self._message(user, name, message_id)
        _require_sent(message, N_("Message {message_id!r} is not sent yet: nothing to react to."))
        await self.sessions.pool.call(
            session.route,
            session.label,
            lambda w: w.react(session.client_id, message.chat, _ref(message), emoji),
        )
        assert message.wa_id is not None
        updated = await self.registry.messages.react(
            session.id, message.wa_id, ME, emoji, reactor_lid=None
        )
        return updated or message

    async def edit(self, user: User, name: str, message_id: str, text: str) -> Message:
        """Replace the text of a text message this session sent, within WhatsApp's 15
        minutes."""
        if not text.strip():
            raise ValidationFailed(N_("text: must not be empty"))
        session, message = await self._message(user, name, message_id)
        _require_own(
            message, N_("Message {message_id!r} was received: only your own can be edited.")
        )
        if message.kind != "text":
            raise MessageActionRefused(
                N_("Message {message_id!r} is a {kind} message: only text messages can be edited."),
                message_id=message.id,
                kind=message.kind,
            )
        _require_sent(message, N_("Message {message_id!r} is not sent yet: it cannot be edited."))
        now = datetime.now(UTC)
        if now - message.created_at > timedelta(seconds=EDIT_WINDOW_SECONDS):
            raise MessageActionRefused(
                N_(
                    "Message {message_id!r} was sent more than {minutes} minutes ago: "
                    "WhatsApp no longer lets it be edited."
                ),
                hint=N_("Send a new message instead (reply_to can quote the old one)."),
                message_id=message.id,
                minutes=EDIT_WINDOW_SECONDS // 60,
            )
        assert message.wa_id is not None
        await self.sessions.pool.call(
            session.route,
            session.label,
            lambda w: w.edit(session.client_id, message.chat, message.wa_id or "", text),
        )
        updated = await self.registry.messages.edit(session.id, message.wa_id, text, now)
        return updated or message

    async def revoke(self, user: User, name: str, message_id: str) -> Message:
        """Delete a message this session sent for everyone."""
        session, message = await self._message(user, name, message_id)
        _require_own(
            message, N_("Message {message_id!r} was received: only your own can be deleted.")
        )
        if message.revoked_at is not None:
            return message  # deleting again: done already
        _require_sent(message, N_("Message {message_id!r} is not sent yet: it cannot be deleted."))
        await self.sessions.pool.call(
            session.route,
            session.label,
            lambda w: w.revoke(session.client_id, message.chat, _ref(message)),
        )
        assert message.wa_id is not None
        updated = await self.registry.messages.revoke(session.id, message.wa_id, datetime.now(UTC))
        return updated or message

    async def read(self, user: User, name: str, message_id: str) -> Message:
        """Send the read receipt of a received message (once; others: nothing to do)."""
        session, message = await self._message(user, name, message_id)
        if message.direction != "in" or message.read_at is not None:
            return message
        await self._mark_read(session, message.chat, [message])
        return await self.registry.messages.get(session.id, message.id) or message

    async def read_chat(self, user: User, name: str, chat: str) -> tuple[str, int]:
        """Send read receipts for a chat's unread received messages: (the chat as
        stored, how many)."""
        session = await self.sessions.get(user, name)
        address = self.sessions.chat(chat, session)
        unread = await self.registry.messages.unread(session.id, address)
        if not unread:
            return address, 0
        chat_of = unread[-1].chat
        ids = await self._send_receipts(session, chat_of, unread)
        # `chat.read`, once: a read WhatsApp reports back changes nothing more.
        await self.registry.messages.read_chat(
            session.id, chat_of, unread[-1].chat_lid, wa_ids=ids, at=datetime.now(UTC)
        )
        return chat_of, len(unread)

    async def _mark_read(self, session: Session, chat: str, messages: list[Message]) -> None:
        await self._send_receipts(session, chat, messages)
        await self.registry.messages.mark_read(
            session.id, [m.pk for m in messages], datetime.now(UTC)
        )

    async def _send_receipts(
        self, session: Session, chat: str, messages: list[Message]
    ) -> list[str]:
        """Send the read receipts of `messages` of `chat`; WhatsApp's ids of them."""
        ids = [m.wa_id for m in messages if m.wa_id is not None]
        await self.sessions.pool.call(
            session.route,
            session.label,
            lambda w: w.mark_read(session.client_id, chat, ids),
        )
        return ids

    async def presence(self, user: User, name: str, chat: str, state: str) -> str:
        """Show `state` (typing, recording, paused) in a chat; the chat's address."""
        session = await self.sessions.get(user, name)
        address = self.sessions.chat(chat, session)
        await self.sessions.pool.call(
            session.route,
            session.label,
            lambda w: w.set_presence(session.client_id, address, state),
        )
        return address

    async def chats(
        self, user: User, name: str, *, limit: int, before: int | None
    ) -> tuple[list[Chat], int | None]:
        session = await self.sessions.get(user, name)
        return await self.registry.messages.chats(session.id, limit=limit, before=before)


def _require_own(message: Message, template: str) -> None:
    if message.direction != "out":
        raise MessageActionRefused(template, message_id=message.id)


def _require_sent(message: Message, template: str) -> None:
    if message.wa_id is None:
        raise MessageActionRefused(
            template,
            hint=N_(
                "Wait for its status to be sent (GET the message, or the message.status event)."
            ),
            message_id=message.id,
        )
    if message.revoked_at is not None:
        raise MessageActionRefused(
            N_("Message {message_id!r} was deleted for everyone."), message_id=message.id
        )
