"""Wire schemas of the public API, separate from domain objects and DB rows."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from zapgate.domain.media import media_url
from zapgate.domain.models import Delivery, MediaMeta, Message, Session, Webhook
from zapgate.domain.state import SessionState


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: str | None = Field(default=None, max_length=40)
    start: bool = True
    send_rate: str | None = Field(
        default=None,
        max_length=32,
        description="Anti-ban send rate for this number: BURST/INTERVALs (e.g. 5/3s) or off",
    )


class SessionPublic(BaseModel):
    name: str
    client_id: str
    engine: str
    state: SessionState
    state_reason: str | None
    phone: str | None
    worker_id: str
    worker_url: str | None
    port: int | None
    send_rate: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Session) -> SessionPublic:
        return cls(
            name=s.name,
            client_id=s.client_id,
            engine=s.engine,
            state=s.state,
            state_reason=s.state_reason,
            phone=s.phone,
            worker_id=s.worker_id,
            worker_url=s.worker_url,
            port=s.port,
            send_rate=s.send_rate,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class SessionList(BaseModel):
    items: list[SessionPublic]


class QrPublic(BaseModel):
    qr: str
    png_base64: str
    expires_at: datetime | None


class PairCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(max_length=32)


class PairCodeOut(BaseModel):
    code: str


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(max_length=16, description="image, document, audio or video")
    url: str | None = Field(
        default=None, max_length=2000, description="http(s) URL zapgate downloads the file from"
    )
    base64: str | None = Field(default=None, description="The file, base64 (or a data: URL)")
    mime: str | None = Field(default=None, max_length=200, description="Default: detected")
    filename: str | None = Field(default=None, max_length=255)
    caption: str | None = None


class SendMessage(BaseModel):
    """`{to, text}`, or `{to, media: {type, url | base64, mime?, filename?, caption?}}`."""

    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32)
    text: str | None = None
    media: MediaIn | None = None


class MediaPublic(BaseModel):
    type: str
    mime: str
    size: int
    filename: str | None
    url: str | None = Field(description="Where the owner can download it (API path)")

    @classmethod
    def of(cls, m: MediaMeta, session_name: str, message_id: str) -> MediaPublic:
        return cls(
            type=m.type,
            mime=m.mime,
            size=m.size,
            filename=m.filename,
            url=media_url(session_name, message_id) if m.ref else None,
        )


class MessagePublic(BaseModel):
    id: str
    direction: Literal["in", "out"]
    chat: str
    text: str | None
    status: str
    status_reason: str | None
    created_at: datetime
    scheduled_at: datetime | None = Field(
        default=None, description="When a queued message is expected to go (rate limit)"
    )
    media: MediaPublic | None = None

    @classmethod
    def of(cls, m: Message, session_name: str | None = None) -> MessagePublic:
        direction: Literal["in", "out"] = "in" if m.direction == "in" else "out"
        return cls(
            id=m.id,
            direction=direction,
            chat=m.chat,
            text=m.text,
            status=m.status.value,
            status_reason=m.status_reason,
            created_at=m.created_at,
            scheduled_at=m.scheduled_at,
            media=MediaPublic.of(m.media, session_name, m.id)
            if m.media is not None and session_name is not None
            else None,
        )


class MessageList(BaseModel):
    items: list[MessagePublic]
    next: str | None


class SimScan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qr: str = Field(max_length=1024)
    phone: str = Field(max_length=32)


class SimMedia(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(max_length=16)
    base64: str
    mime: str | None = Field(default=None, max_length=200)
    filename: str | None = Field(default=None, max_length=255)


class SimPhoneMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32)
    text: str | None = Field(default=None, max_length=65_536)
    media: SimMedia | None = Field(default=None, description="Sent with `text` as caption")


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    database: str
    workers: dict[str, str]


class WorkerInfo(BaseModel):
    worker_id: str
    worker_url: str | None
    port: int | None
    reachable: bool
    detail: str
    sessions: int


class WorkerList(BaseModel):
    topology: str
    items: list[WorkerInfo]


class AdminSession(SessionPublic):
    user_id: int


class AdminSessionList(BaseModel):
    items: list[AdminSession]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, max_length=10)
    secret: str | None = Field(default=None, max_length=200)


class WebhookPublic(BaseModel):
    id: int
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    secret: str | None = Field(default=None, description="Only in the answer to the create")

    @classmethod
    def of(cls, w: Webhook, *, with_secret: bool = False) -> WebhookPublic:
        return cls(
            id=w.id,
            url=w.url,
            events=list(w.events),
            enabled=w.enabled,
            disabled_reason=w.disabled_reason,
            created_at=w.created_at,
            secret=w.secret if with_secret else None,
        )


class WebhookList(BaseModel):
    items: list[WebhookPublic]


class DeliveryPublic(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Delivery) -> DeliveryPublic:
        return cls(
            id=d.id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )


class DeliveryList(BaseModel):
    items: list[DeliveryPublic]


class PingOut(BaseModel):
    event_id: str
