"""Inside a host process: whatsmeow's events as the plain fields of a note (rpc.py). JIDs
become addresses and phones, message protobufs texts and media descriptions, receipts
statuses; what is not a message of this number's chats (parts without content, protocol
messages, status updates, channels, our own echoes) becomes nothing."""

from __future__ import annotations

import logging
from typing import Any

from neonize.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto.Neonize_pb2 import JID, PairStatus, Receipt

from zapgate.engines.whatsmeow.rpc import NoteKind

logger = logging.getLogger(__name__)

# The whatsmeow events a session subscribes to.
EVENTS: tuple[type, ...] = (
    ConnectedEv,
    PairStatusEv,
    MessageEv,
    ReceiptEv,
    LoggedOutEv,
    DisconnectedEv,
    ConnectFailureEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    StreamReplacedEv,
    TemporaryBanEv,
    ClientOutdatedEv,
)
_SIMPLE: dict[type, NoteKind] = {
    DisconnectedEv: "disconnected",
    KeepAliveTimeoutEv: "keepalive_timeout",
    KeepAliveRestoredEv: "keepalive_restored",
    StreamReplacedEv: "stream_replaced",
    ClientOutdatedEv: "client_outdated",
}
RECEIPTS: dict[int, str] = {
    Receipt.DELIVERED: "delivered",
    Receipt.READ: "read",
    # A played voice note or video was necessarily read.
    Receipt.PLAYED: "read",
}
_LOGOUT_REASONS: Any = LoggedOutEv.DESCRIPTOR.fields_by_name["Reason"].enum_type
_CONNECT_FAILURES: Any = ConnectFailureEv.DESCRIPTOR.fields_by_name["Reason"].enum_type
MEDIA_FIELDS: dict[str, str] = {
    "imageMessage": "image",
    "videoMessage": "video",
    "documentMessage": "document",
    "audioMessage": "audio",
    "stickerMessage": "sticker",
}
PHONE_SERVERS = ("s.whatsapp.net", "c.us")

Converted = tuple[NoteKind, dict[str, Any], bytes]


def note_of(client: Any, ev_type: type, ev: Any) -> Converted | None:
    """The note for one whatsmeow event, None when it is not worth one."""
    if ev_type is MessageEv:
        return message(client, ev)
    if ev_type is ConnectedEv:
        return "connected", {}, b""
    if ev_type is PairStatusEv:
        ok = ev.Status == PairStatus.SUCCESS
        return "pair", {"ok": ok, "jid": jid_fields(ev.ID) if ok else None, "error": ev.Error}, b""
    if ev_type is ReceiptEv:
        status = RECEIPTS.get(int(ev.Type))
        if status is None:
            return None
        return "receipt", {"ids": [str(i) for i in ev.MessageIDs], "status": status}, b""
    if ev_type is LoggedOutEv:
        name = _LOGOUT_REASONS.values_by_number.get(int(ev.Reason))
        return "logged_out", {"reason": str(name.name if name else "logged_out").lower()}, b""
    if ev_type is ConnectFailureEv:
        return "connect_failure", {"reason": connect_failure_reason(ev)}, b""
    if ev_type is TemporaryBanEv:
        return "temporary_ban", {"code": int(ev.Code), "expire": max(int(ev.Expire), 0)}, b""
    kind = _SIMPLE.get(ev_type)
    return None if kind is None else (kind, {}, b"")


# -- JIDs -----------------------------------------------------------------------------------
def jid_fields(jid: Any) -> dict[str, Any]:
    return {"user": str(jid.User), "device": int(jid.Device), "server": str(jid.Server)}


def address(jid: Any) -> str:
    """A JID as zapgate shows it: E.164 for a phone number, `user@server` otherwise."""
    user, server = str(jid.User), str(jid.Server)
    if server in PHONE_SERVERS and user.isdigit():
        return "+" + user
    return f"{user}@{server}" if server else user


def is_lid(jid: Any) -> bool:
    return str(jid.Server) == "lid" and bool(jid.User)


def is_phone(jid: Any) -> bool:
    return str(jid.Server) in PHONE_SERVERS and str(jid.User).isdigit()


def target(to: str) -> Any:
    """The JID a send goes to: an E.164 number (`+5511...`) or a LID (`123...@lid`)."""
    if to.endswith("@lid"):
        return JID(User=to[: -len("@lid")], Server="lid", Device=0, RawAgent=0, Integrator=0)
    return JID(User=to.lstrip("+"), Server="s.whatsapp.net", Device=0, RawAgent=0, Integrator=0)


def _phone_for_lid(client: Any, lid: Any) -> Any:
    """The phone JID whatsmeow's store maps `lid` to, None when it knows none."""
    try:
        pn = client.get_pn_from_lid(JID(User=lid.User, Server="lid"))
    except Exception as exc:
        logger.debug("no phone for %s@lid: %s", lid.User, exc)
        return None
    return pn if is_phone(pn) else None


def _lid_for_phone(client: Any, pn: Any) -> Any:
    """The LID whatsmeow's store maps phone JID `pn` to, None when it knows none."""
    try:
        lid = client.get_lid_from_pn(JID(User=pn.User, Server="s.whatsapp.net"))
    except Exception as exc:
        logger.debug("no lid for %s: %s", pn.User, exc)
        return None
    return lid if is_lid(lid) else None


def _pair(client: Any, jid: Any, alt: Any) -> tuple[str, str | None]:
    """(address, lid) of one party: its phone when known (the JID itself, its alternate
    JID, or the store's LID→phone map), and its LID when known (the JID, its alternate, or
    the store's phone→LID map)."""
    lid = alt if is_lid(alt) else (jid if is_lid(jid) else None)
    phone = jid if is_phone(jid) else (alt if is_phone(alt) else None)
    if phone is None and lid is not None:
        phone = _phone_for_lid(client, lid)
    if lid is None and phone is not None:
        lid = _lid_for_phone(client, phone)
    shown = phone if phone is not None else jid
    return address(shown), (f"{lid.User}@lid" if lid is not None else None)


# -- messages -------------------------------------------------------------------------------
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


def media_field(message: Any) -> str | None:
    return next((name for name in MEDIA_FIELDS if message.HasField(name)), None)


def has_content(message: Any) -> bool:
    """Whether an (unwrapped) message carries something zapgate delivers: text or media.

    whatsmeow dispatches every encrypted part of a stanza as its own message event with the
    stanza's id (message.go, whatsmeow#184): in a group, the sender's first message (and
    the first after each sender-key rotation) arrives as a part holding only a
    `senderKeyDistributionMessage`, then the part with the content. Protocol messages
    (edits, deletes, reactions, poll votes, pins, timers) are message events too. None of
    those is an inbound message of its own.
    """
    return text(message) is not None or media_field(message) is not None


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


def timestamp(raw: int) -> float | None:
    if raw <= 0:
        return None
    return raw / 1000 if raw > 10**11 else float(raw)  # neonize has sent both s and ms


def message(client: Any, ev: Any) -> Converted | None:
    source = ev.Info.MessageSource
    if source.IsFromMe:
        return None  # our own messages, echoed from the phone or another linked device
    if is_status_or_newsletter(source.Chat):
        return None  # contacts' stories and channels: never downloaded, never stored
    content = unwrap(ev.Message)
    if not has_content(content):
        # A sender-key-only part of a group stanza or a protocol message: a note would
        # store a content-less row under the id the real content arrives with.
        logger.debug("message %s: a part without content; not delivered", ev.Info.ID)
        return None
    sender, sender_lid = _pair(client, source.Sender, source.SenderAlt)
    if source.IsGroup:
        chat, chat_lid = address(source.Chat), None
    else:
        # A 1:1 chat is the other party: addressed by LID, its phone is the sender's.
        chat, chat_lid = _pair(client, source.Chat, source.SenderAlt)
        if chat.endswith("@lid") and sender.startswith("+"):
            chat = sender
    fields: dict[str, Any] = {
        "id": str(ev.Info.ID),
        "chat": chat,
        "chat_lid": chat_lid,
        "sender": sender,
        "sender_lid": sender_lid,
        "text": text(content),
        "timestamp": timestamp(int(ev.Info.Timestamp)),
        "media": None,
    }
    body = b""
    name = media_field(content)
    if name is not None:
        sub = getattr(content, name)
        fields["media"] = {
            "kind": MEDIA_FIELDS[name],
            "mime": str(sub.mimetype) or "application/octet-stream",
            "size": int(sub.fileLength),
            "filename": (str(sub.fileName) or None) if name == "documentMessage" else None,
            "sha256": bytes(sub.fileSHA256).hex() or None,
        }
        # The worker hands it back, unread, to have the media downloaded.
        body = content.SerializeToString()
    return "message", fields, body


def connect_failure_reason(ev: Any) -> str:
    """A ConnectFailureEv as a DISCONNECTED reason: WhatsApp's reason name and message."""
    name = _CONNECT_FAILURES.values_by_number.get(int(ev.Reason))
    label = name.name.lower() if name else str(int(ev.Reason))
    detail = f": {ev.Message}" if ev.Message else ""
    return f"connect_failure {label}{detail}"[:300]
