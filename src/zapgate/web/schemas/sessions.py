"""/v1/sessions: a session, the list, its QR code and its pairing code."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from zapgate.domain.models import Session
from zapgate.domain.state import SessionState

# What a phone number may look like on the wire; the service then requires E.164 (or a
# national number of a default country) and answers `invalid_phone` with a hint, so the
# constraints below are documented rather than checked twice with a vaguer message.
PHONE_SCHEMA: JsonDict = {"pattern": r"^[0-9+\s().-]+$", "minLength": 1, "maxLength": 32}
# The longest reply to a call rejected automatically.
MAX_REJECT_MESSAGE = 1000


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: str | None = Field(
        default=None, max_length=40, description="sim or whatsmeow; default: the server's"
    )
    start: bool = True
    send_rate: str | None = Field(
        default=None,
        max_length=32,
        description="Anti-ban send rate for this number: BURST/INTERVALs (e.g. 5/3s) or off",
    )
    default_country: str | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description=(
            "Country of phone numbers written without '+' (ISO 3166 alpha-2, e.g. BR); "
            "null follows ZAPGATE_DEFAULT_COUNTRY"
        ),
    )
    reject_calls: bool = Field(
        default=False, description="Reject every call as it rings (call.received says so)"
    )
    reject_calls_message: str | None = Field(
        default=None,
        max_length=MAX_REJECT_MESSAGE,
        description="Sent to the caller of a call rejected that way; null or blank: none",
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
    default_country: str | None
    reject_calls: bool
    reject_calls_message: str | None
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
            default_country=s.default_country,
            reject_calls=s.reject_calls,
            reject_calls_message=s.reject_calls_message,
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
    phone: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)


class PairCodeOut(BaseModel):
    code: str
