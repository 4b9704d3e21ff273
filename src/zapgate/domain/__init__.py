"""Frozen domain types shared by every layer."""

from zapgate.domain.events import (
    EngineEvent,
    MessageAck,
    MessageReceived,
    QrUpdated,
    StateChanged,
)
from zapgate.domain.ids import (
    SESSION_NAME_RE,
    derive_client_id,
    is_valid_client_id,
    normalize_phone,
    session_dir_for,
    validate_session_name,
)
from zapgate.domain.models import Message, MessageStatus, Route, Session
from zapgate.domain.state import SessionState, can_transition

__all__ = [
    "SESSION_NAME_RE",
    "EngineEvent",
    "Message",
    "MessageAck",
    "MessageReceived",
    "MessageStatus",
    "QrUpdated",
    "Route",
    "Session",
    "SessionState",
    "StateChanged",
    "can_transition",
    "derive_client_id",
    "is_valid_client_id",
    "normalize_phone",
    "session_dir_for",
    "validate_session_name",
]
