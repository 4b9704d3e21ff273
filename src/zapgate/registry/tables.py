"""The registry's tables as SQLAlchemy ORM rows. Rows never leave the registry: every
public method converts them to the frozen domain dataclasses first.

The hand-written migrations in `migrations/versions/` must produce exactly these tables;
a contract test compares the two so they cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names: migrations can refer to them and PostgreSQL and SQLite
# end up with the same names.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly `INTEGER PRIMARY KEY`.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

UTCDateTime = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The dashboard language the user picked ("en", "pt_BR"); NULL follows the browser.
    lang: Mapped[str | None] = mapped_column(String(16))
    # How many sessions this user may have; NULL follows ZAPGATE_MAX_SESSIONS_PER_USER.
    max_sessions: Mapped[int | None] = mapped_column(Integer)


class DashboardSessionRow(Base):
    """One signed-in browser: the signed cookie names its random id, and every dashboard
    request checks it here, so signing out (or a new password) ends it on the server."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # A digest of the password hash at sign-in: a new password ends every older session.
    password_stamp: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    session_dir: Mapped[str] = mapped_column(String(200))
    engine: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32))
    state_reason: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    worker_id: Mapped[str] = mapped_column(String(200))
    worker_url: Mapped[str | None] = mapped_column(String(500))
    port: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Per-session anti-ban send rate ("5/3s", "off"); NULL follows ZAPGATE_SEND_RATE.
    send_rate: Mapped[str | None] = mapped_column(String(32))
    # Per-session country of national phone numbers ("BR"); NULL follows
    # ZAPGATE_DEFAULT_COUNTRY.
    default_country: Mapped[str | None] = mapped_column(String(2))


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("session_id", "id"),
        UniqueConstraint("session_id", "idempotency_key"),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        # History pages walk one session newest-first by pk.
        Index("ix_messages_session_id_pk", "session_id", "pk"),
        # Receipts (and replies, reactions...) find a message by WhatsApp's id.
        Index("ix_messages_session_id_wa_id", "session_id", "wa_id"),
        # A learned LID -> phone mapping rewrites the chat of that LID's messages.
        Index("ix_messages_session_id_chat_lid", "session_id", "chat_lid"),
        # The outbound queue's scans look for the few queued or pending messages.
        Index("ix_messages_status_deadline_at", "status", "deadline_at"),
        # A chat's history, and the chats list (each chat's newest message, its unread).
        Index("ix_messages_session_id_chat_pk", "session_id", "chat", "pk"),
        # Without it SQLite may hand out the pk of a deleted newest row again, and a
        # client's `before` cursor would then skip or repeat messages.
        {"sqlite_autoincrement": True},
    )

    pk: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(Integer, ForeignKey("sessions.id", ondelete="CASCADE"))
    # The gateway's id (the public `id`); inbound messages keep WhatsApp's.
    id: Mapped[str] = mapped_column(String(128))
    # WhatsApp's id: an outbound message's is known once the engine sent it.
    wa_id: Mapped[str | None] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(3))
    # The chat's phone (E.164) when known, else its LID, or a group's JID...
    chat: Mapped[str] = mapped_column(String(200))
    # ...and its LID (`<digits>@lid`) when known.
    chat_lid: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # sha256 of the request that carried the key: the same key with another request is refused.
    idempotency_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Outbound queue: not before `scheduled_at` (rate limit), failed after `deadline_at`.
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Media (image/document/audio/video): `media_ref` is where the bytes are, relative to
    # the web tier's data dir (outbound) or to the session dir on its worker (inbound).
    media_type: Mapped[str | None] = mapped_column(String(16))
    media_mime: Mapped[str | None] = mapped_column(String(200))
    media_name: Mapped[str | None] = mapped_column(String(255))
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    media_ref: Mapped[str | None] = mapped_column(String(500))
    # text, media, location, contacts or poll.
    kind: Mapped[str] = mapped_column(String(16), server_default="text")
    # `Extras.to_dict()` as JSON: the quote, mentions, location, contacts or poll.
    content: Mapped[str | None] = mapped_column(Text)
    # The gateway's id of the quoted message, when this session has it.
    reply_to: Mapped[str | None] = mapped_column(String(128))
    # Sent from the phone (or another device of the number), not through the gateway.
    from_me: Mapped[bool] = mapped_column(Boolean, server_default=false())
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When this session sent a read receipt for it (inbound).
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The name its sender set in WhatsApp (push name), as the message carried it.
    sender_name: Mapped[str | None] = mapped_column(String(200))


class ReactionRow(Base):
    """The latest reaction of each reactor to a message (removed: no row)."""

    __tablename__ = "reactions"

    message_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.pk", ondelete="CASCADE"), primary_key=True
    )
    # The reactor's address, or "me" for the session's own number.
    reactor: Mapped[str] = mapped_column(String(200), primary_key=True)
    emoji: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PollVoteRow(Base):
    """Each voter's latest selection on a poll (a JSON list of option texts)."""

    __tablename__ = "poll_votes"

    message_pk: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.pk", ondelete="CASCADE"), primary_key=True
    )
    voter: Mapped[str] = mapped_column(String(200), primary_key=True)
    selected: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LidPhoneRow(Base):
    """A session's LID <-> phone map, learned from events that carry both addresses."""

    __tablename__ = "lid_phones"
    __table_args__ = (Index("ix_lid_phones_session_id_phone", "session_id", "phone"),)

    session_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    lid: Mapped[str] = mapped_column(String(40), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactRow(Base):
    """The latest name (push name) each contact of a session set in WhatsApp, as its
    messages carried it; `address` as `registry/lids.py` names the chat (its phone
    whenever the LID map knows it)."""

    __tablename__ = "contacts"

    session_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(200), primary_key=True)
    push_name: Mapped[str] = mapped_column(String(200))
    # When the message that brought the name was sent.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerCursorRow(Base):
    __tablename__ = "worker_cursors"

    worker_key: Mapped[str] = mapped_column(String(500), primary_key=True)
    cursor: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRow(Base):
    """The durable outbox: one row per event, written in the transaction of the change it
    reports. `seq` orders events (and is the SSE event id); `id` is what receivers
    de-duplicate on."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_session_id_seq", "session_id", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("sessions.id", ondelete="SET NULL")
    )
    session_name: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    data: Mapped[str] = mapped_column(Text)


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    # Space-separated event types; empty means every type.
    events: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        # Also the index of the foreign key on webhook_id (its first column).
        UniqueConstraint("webhook_id", "event_seq"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # A webhook's pending deliveries in event order (the dispatcher's claim) without
        # walking past every delivery it ever made.
        Index("ix_deliveries_webhook_id_status_event_seq", "webhook_id", "status", "event_seq"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(Integer, ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("events.seq", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


metadata = Base.metadata
