"""Row -> domain conversions: the only way data leaves the registry, as frozen domain
objects with UTC timestamps, never ORM rows. Message conversions also take Core rows of
the messages table (the group-commit jobs read with Core)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from zapgate.domain.content import Extras
from zapgate.domain.ids import identity
from zapgate.domain.media import media_url
from zapgate.domain.models import (
    ApiKey,
    Delivery,
    Event,
    MediaMeta,
    Message,
    MessageStatus,
    Session,
    User,
    Webhook,
)
from zapgate.domain.state import SessionState
from zapgate.registry.tables import (
    ApiKeyRow,
    DeliveryRow,
    EventRow,
    SessionRow,
    UserRow,
    WebhookRow,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back naive (they are stored in UTC); PostgreSQL aware."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        is_admin=row.is_admin,
        created_at=as_utc(row.created_at),
        lang=row.lang,
        max_sessions=row.max_sessions,
    )


def api_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        created_at=as_utc(row.created_at),
        last_used_at=as_utc_or_none(row.last_used_at),
    )


def session(row: SessionRow | Row[Any]) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        client_id=row.client_id,
        session_dir=row.session_dir,
        engine=row.engine,
        state=SessionState(row.state),
        state_reason=row.state_reason,
        phone=row.phone,
        worker_id=row.worker_id,
        worker_url=row.worker_url,
        port=row.port,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        send_rate=row.send_rate,
        default_country=row.default_country,
    )


def extras(content: str | None) -> Extras:
    """A message's `content` column: `Extras.to_dict()` as JSON (NULL: none)."""
    return Extras.from_dict(json.loads(content) if content else None)


def message(
    row: Any,
    reactions: dict[str, str] | None = None,
    votes: dict[str, tuple[str, ...]] | None = None,
) -> Message:
    """`row`: a `MessageRow`, or a row of the messages table from a Core or prepared
    statement (`registry/prepared.py`): the same attributes. `reactions` and `votes`: the
    message's, when the caller read them."""
    return Message(
        kind=row.kind,
        extras=extras(row.content),
        reply_to=row.reply_to,
        from_me=bool(row.from_me),
        edited_at=as_utc_or_none(row.edited_at),
        revoked_at=as_utc_or_none(row.revoked_at),
        read_at=as_utc_or_none(row.read_at),
        reactions=reactions or {},
        votes=votes or {},
        sender_name=row.sender_name,
        pk=row.pk,
        session_id=row.session_id,
        id=row.id,
        wa_id=row.wa_id,
        direction=row.direction,
        chat=row.chat,
        chat_lid=row.chat_lid,
        text=row.text,
        status=MessageStatus(row.status),
        status_reason=row.status_reason,
        idempotency_key=row.idempotency_key,
        idempotency_hash=row.idempotency_hash,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        scheduled_at=as_utc_or_none(row.scheduled_at),
        deadline_at=as_utc_or_none(row.deadline_at),
        media=None
        if row.media_type is None
        else MediaMeta(
            type=row.media_type,
            mime=row.media_mime or "application/octet-stream",
            size=row.media_size or 0,
            filename=row.media_name,
            ref=row.media_ref,
        ),
    )


def message_data(row: Any, session_name: str) -> dict[str, Any]:
    """What message events carry (`row` as for `message`)."""
    media: dict[str, Any] | None = None
    if row.media_type is not None:
        media = {
            "type": row.media_type,
            "mime": row.media_mime,
            "filename": row.media_name,
            "size": row.media_size,
            "url": media_url(session_name, row.id) if row.media_ref else None,
        }
    return {
        "id": row.id,
        "wa_id": row.wa_id,
        "direction": row.direction,
        "chat": row.chat,
        "chat_lid": row.chat_lid,
        **identity(row.chat, row.chat_lid),
        "text": row.text,
        "status": row.status,
        "status_reason": row.status_reason,
        "created_at": as_utc(row.created_at).isoformat(),
        "media": media,
        "sender_name": row.sender_name,
        **content_data(row),
    }


def content_data(row: Any) -> dict[str, Any]:
    """What a message event says of its kind and extras (`row` as for `message`): the
    fields of the extras it has, and `reply_to` as the gateway id (when this session has
    the quoted message) with WhatsApp's id of it."""
    ex = extras(row.content)
    data: dict[str, Any] = {"kind": row.kind, "from_me": bool(row.from_me)}
    if ex.quote is not None:
        data["reply_to"] = {
            "id": row.reply_to,
            "wa_id": ex.quote.id,
            "sender": ex.quote.sender,
            "text": ex.quote.text,
        }
    if ex.mentions:
        data["mentions"] = list(ex.mentions)
    if ex.location is not None:
        data["location"] = ex.location.to_dict()
    if ex.contacts:
        data["contacts"] = [c.to_dict() for c in ex.contacts]
    if ex.poll is not None:
        data["poll"] = ex.poll.to_dict()
    if ex.preview is not None:
        data["preview"] = ex.preview.to_dict()
    if row.edited_at is not None:
        data["edited_at"] = as_utc(row.edited_at).isoformat()
    if row.revoked_at is not None:
        data["revoked"] = True
    return data


def event(row: EventRow) -> Event:
    return Event(
        seq=row.seq,
        id=row.id,
        user_id=row.user_id,
        session=row.session_name,
        type=row.type,
        occurred_at=as_utc(row.occurred_at),
        data=json.loads(row.data),
    )


def webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id,
        user_id=row.user_id,
        url=row.url,
        secret=row.secret,
        events=tuple(row.events.split()),
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        created_at=as_utc(row.created_at),
    )


def delivery(row: DeliveryRow, ev: EventRow) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_seq=row.event_seq,
        event_id=ev.id,
        event_type=ev.type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at),
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )
