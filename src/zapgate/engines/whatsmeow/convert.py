"""whatsmeow's data as zapgate's: JIDs as addresses and phones, message protobufs as
texts and timestamps, receipts as statuses, Go's dial errors as a reason naming the host."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from neonize.events import ConnectFailureEv, LoggedOutEv
from neonize.proto.Neonize_pb2 import Receipt

from zapgate.domain.ids import normalize_phone
from zapgate.domain.models import MessageStatus

WHATSAPP_HOST = "web.whatsapp.com"
WHATSAPP_PORT = 443

RECEIPTS: dict[int, MessageStatus] = {
    Receipt.DELIVERED: MessageStatus.DELIVERED,
    Receipt.READ: MessageStatus.READ,
    # A played voice note or video was necessarily read.
    Receipt.PLAYED: MessageStatus.READ,
}
_LOGOUT_REASONS: Any = LoggedOutEv.DESCRIPTOR.fields_by_name["Reason"].enum_type
MEDIA_FIELDS = (
    "imageMessage",
    "videoMessage",
    "documentMessage",
    "audioMessage",
    "stickerMessage",
)


def address(jid: Any) -> str:
    """A JID as zapgate shows it: E.164 for a phone number, `user@server` otherwise."""
    user, server = str(jid.User), str(jid.Server)
    if server in ("s.whatsapp.net", "c.us") and user.isdigit():
        return "+" + user
    return f"{user}@{server}" if server else user


def sender(source: Any) -> str:
    # With LID addressing the sender is a privacy id; the phone number, when WhatsApp
    # shares it, is in SenderAlt.
    if source.Sender.Server == "lid" and source.SenderAlt.User:
        return address(source.SenderAlt)
    return address(source.Sender)


def phone_of(jid: Any) -> str | None:
    """The E.164 phone number of a JID, None when it is not a phone's."""
    user = str(getattr(jid, "User", "") or "")
    if not user.isdigit():
        return None
    try:
        return normalize_phone("+" + user)
    except Exception:
        return None


def text(message: Any) -> str | None:
    if message.conversation:
        return str(message.conversation)
    if message.extendedTextMessage.text:
        return str(message.extendedTextMessage.text)
    for name in MEDIA_FIELDS:
        if message.HasField(name):
            caption = getattr(getattr(message, name), "caption", "")
            return str(caption) if caption else None
    return None


def has_content(message: Any) -> bool:
    """Whether an (unwrapped) message carries something zapgate delivers: text or media.

    whatsmeow dispatches every encrypted part of a stanza as its own message event with the
    stanza's id (message.go, whatsmeow#184): in a group, the sender's first message (and
    the first after each sender-key rotation) arrives as a part holding only a
    `senderKeyDistributionMessage`, then the part with the content. Protocol messages
    (edits, deletes, reactions, poll votes, pins, timers) are message events too. None of
    those is an inbound message of its own.
    """
    if text(message) is not None:
        return True
    return any(message.HasField(name) for name in MEDIA_FIELDS)


def is_status_or_newsletter(chat: Any) -> bool:
    """Status updates (`status@broadcast`) and channels (`@newsletter`) look like chats in
    whatsmeow's events; they are not conversations of this number."""
    return str(chat.Server) in ("broadcast", "newsletter")


def unwrap(message: Any) -> Any:
    """The message inside the wrappers WhatsApp puts around a document with a caption and
    around view-once media."""
    for wrapper in (
        "documentWithCaptionMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
    ):
        if message.HasField(wrapper):
            return getattr(message, wrapper).message
    return message


def timestamp(raw: int) -> datetime:
    if raw <= 0:
        return datetime.now(UTC)
    seconds = raw / 1000 if raw > 10**11 else raw  # neonize has sent both s and ms
    return datetime.fromtimestamp(seconds, UTC)


_CONNECT_FAILURES: Any = ConnectFailureEv.DESCRIPTOR.fields_by_name["Reason"].enum_type


def connect_failure_reason(ev: Any) -> str:
    """A ConnectFailureEv as a DISCONNECTED reason: WhatsApp's reason name and message."""
    name = _CONNECT_FAILURES.values_by_number.get(int(ev.Reason))
    label = name.name.lower() if name else str(int(ev.Reason))
    message = f": {ev.Message}" if ev.Message else ""
    return f"connect_failure {label}{message}"[:300]


def logout_reason(ev: Any) -> str:
    """A LoggedOutEv's reason as a state reason (`logged_out` when WhatsApp gave none)."""
    name = _LOGOUT_REASONS.values_by_number.get(int(ev.Reason))
    return str(name.name if name else "logged_out").lower()


# Where Go's dial errors name the host, most precise first: the proxy's target, the URL,
# a failed lookup or dial.
_HOST_RES = (
    re.compile(r"->([\w.-]+:\d+)"),
    re.compile(r"https?://([\w.-]+)"),
    re.compile(r"lookup ([\w.-]+)"),
    re.compile(r"dial tcp ([\w.-]+:\d+)"),
)


def dial_reason(error: str, default_host: str = f"{WHATSAPP_HOST}:{WHATSAPP_PORT}") -> str:
    """A short DISCONNECTED reason that names the host that could not be reached."""
    host = default_host
    for pattern in _HOST_RES:
        if match := pattern.search(error):
            host = match.group(1)
            break
    detail = error.rsplit(": ", 1)[-1] if ": " in error else error
    return f"cannot reach {host}: {detail}"[:300]
