"""/v1/sim (sim engine only): a simulated phone scans a QR code or writes a message."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from zapgate.web.schemas.messages import MEDIA_TYPE_SCHEMA
from zapgate.web.schemas.sessions import PHONE_SCHEMA


class SimScan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qr: str = Field(min_length=1, max_length=1024)
    phone: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)


class SimMedia(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field(max_length=16, json_schema_extra=MEDIA_TYPE_SCHEMA)
    base64: str = Field(min_length=1)
    mime: str | None = Field(default=None, max_length=200)
    filename: str | None = Field(default=None, max_length=255)


class SimPhoneMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(max_length=32, json_schema_extra=PHONE_SCHEMA)
    text: str | None = Field(default=None, max_length=65_536)
    media: SimMedia | None = Field(default=None, description="Sent with `text` as caption")
