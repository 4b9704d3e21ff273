"""/v1/webhooks: a webhook, its deliveries and a test ping."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from zapgate.domain.models import Delivery, Webhook
from zapgate.registry.outbox import EVENT_TYPES


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        min_length=1,
        max_length=2000,
        description="A public http(s) URL (private addresses only with ZAPGATE_ALLOW_PRIVATE_URLS)",
    )
    # The service names the unknown types and the short secret in its own words.
    events: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="Event types to receive; none means all",
        json_schema_extra={"items": {"type": "string", "enum": list(EVENT_TYPES)}},
    )
    secret: str | None = Field(
        default=None,
        max_length=200,
        description="Default: generated",
        json_schema_extra={"minLength": 16},
    )


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
