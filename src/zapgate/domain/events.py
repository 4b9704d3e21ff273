"""Events an engine reports about one session. Frozen, slotted, keyword-only; each keeps
the engine's raw payload for whoever needs more than the common fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from zapgate.domain.models import MessageStatus
from zapgate.domain.state import SessionState


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged:
    state: SessionState
    reason: str | None = None
    phone: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class QrUpdated:
    qr: str
    expires_at: datetime
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaContent:
    """The media of an inbound message. `data` is None when the engine could not fetch
    the bytes (the metadata is still reported). `ref` is where the worker saved them,
    relative to the session dir (None until saved, or when they could not be)."""

    kind: str  # image, document, audio, video, sticker
    mime: str
    size: int
    filename: str | None = None
    sha256: str | None = None
    ref: str | None = None
    data: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    id: str
    chat: str
    sender: str
    text: str | None  # the text, or a media message's caption
    timestamp: datetime
    media: MediaContent | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageAck:
    id: str
    status: MessageStatus
    raw: Any = field(default=None, compare=False, repr=False)


EngineEvent = StateChanged | QrUpdated | MessageReceived | MessageAck
