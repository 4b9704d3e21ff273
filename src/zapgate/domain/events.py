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
class MessageReceived:
    id: str
    chat: str
    sender: str
    text: str | None
    timestamp: datetime
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageAck:
    id: str
    status: MessageStatus
    raw: Any = field(default=None, compare=False, repr=False)


EngineEvent = StateChanged | QrUpdated | MessageReceived | MessageAck
