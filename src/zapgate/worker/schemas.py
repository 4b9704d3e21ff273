"""Wire shapes of the worker's internal API, shared by the in-process and HTTP clients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from zapgate.domain.contacts import MAX_CHECK
from zapgate.domain.state import SessionState


class SessionSpec(BaseModel):
    session_dir: str = Field(max_length=200)
    engine: str = Field(max_length=40)


class SessionStatus(BaseModel):
    client_id: str
    engine: str
    state: SessionState
    state_reason: str | None = None
    phone: str | None = None
    qr: str | None = None
    qr_expires_at: datetime | None = None


class JournalEntry(BaseModel):
    seq: int
    client_id: str
    type: str
    data: dict[str, Any]
    at: datetime


class JournalPage(BaseModel):
    items: list[JournalEntry]
    next: int


class WorkerHealth(BaseModel):
    ok: bool = True
    worker_id: str
    sessions: int
    states: dict[str, int]
    journal_seq: int


class PairCodeIn(BaseModel):
    phone: str = Field(max_length=32)


class PairCodeOut(BaseModel):
    code: str


class SendIn(BaseModel):
    message_id: str = Field(max_length=64)
    to: str = Field(max_length=32)
    text: str
    # `Extras.to_dict()`: a quote, mentions, or the location, contacts or poll to send.
    extras: dict[str, Any] | None = None


class MessageRefIn(BaseModel):
    id: str = Field(max_length=128)
    from_me: bool
    sender: str | None = Field(default=None, max_length=64)


class ReactIn(BaseModel):
    chat: str = Field(max_length=64)
    target: MessageRefIn
    emoji: str = Field(max_length=32)


class EditIn(BaseModel):
    chat: str = Field(max_length=64)
    target_id: str = Field(max_length=128)
    text: str


class RevokeIn(BaseModel):
    chat: str = Field(max_length=64)
    target: MessageRefIn


class ReadIn(BaseModel):
    chat: str = Field(max_length=64)
    ids: list[str] = Field(max_length=1000)
    sender: str | None = Field(default=None, max_length=64)


class PresenceIn(BaseModel):
    chat: str = Field(max_length=64)
    state: str = Field(max_length=16)


class SendOut(BaseModel):
    id: str


class SimScanIn(BaseModel):
    qr: str = Field(max_length=1024)
    phone: str = Field(max_length=32)


class SimMediaIn(BaseModel):
    kind: str = Field(max_length=16)
    mime: str | None = Field(default=None, max_length=200)
    filename: str | None = Field(default=None, max_length=255)
    data: str  # base64


class SimPhoneSendIn(BaseModel):
    to: str = Field(max_length=32)
    text: str | None = None
    media: SimMediaIn | None = None
    extras: dict[str, Any] | None = None  # Extras.to_dict()


class SimOwnSendIn(BaseModel):
    to: str = Field(max_length=32)
    text: str


class SimReactIn(BaseModel):
    to: str = Field(max_length=32)
    target_id: str = Field(max_length=128)
    emoji: str = Field(max_length=64)


class SimEditIn(BaseModel):
    to: str = Field(max_length=32)
    target_id: str = Field(max_length=128)
    text: str


class SimRevokeIn(BaseModel):
    to: str = Field(max_length=32)
    target_id: str = Field(max_length=128)


class SimVoteIn(BaseModel):
    to: str = Field(max_length=32)
    poll_id: str = Field(max_length=128)
    options: list[str] = Field(max_length=64)


class SimPresenceIn(BaseModel):
    to: str = Field(max_length=32)
    state: str = Field(max_length=16)


class SimLogOut(BaseModel):
    items: list[dict[str, Any]]


class CheckIn(BaseModel):
    phones: list[str] = Field(max_length=MAX_CHECK)


class CheckOut(BaseModel):
    items: list[dict[str, Any]]  # NumberCheck.to_dict()


class AddressIn(BaseModel):
    address: str = Field(max_length=64)


class BlockIn(BaseModel):
    address: str = Field(max_length=64)
    blocked: bool


class AddressBookOut(BaseModel):
    items: list[dict[str, Any]]  # AddressBookEntry.to_dict()


class RejectCallIn(BaseModel):
    call_id: str = Field(max_length=128)
    caller: str = Field(max_length=64)


class SimProfileIn(BaseModel):
    push_name: str | None = Field(default=None, max_length=200)
    about: str | None = Field(default=None, max_length=1000)
    business: bool = False
    picture: bool = False


class SimCallIn(BaseModel):
    to: str = Field(max_length=32)
    video: bool = False


class SimSaveContactIn(BaseModel):
    phone: str = Field(max_length=32)
    name: str = Field(max_length=200)
