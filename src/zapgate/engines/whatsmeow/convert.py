"""Inside a host process: whatsmeow's events as the plain fields of a note (rpc.py). JIDs
become addresses and phones, message protobufs texts, media descriptions and extras (the
quoted message, mentions, a location, contact cards, a poll: `domain.content.Extras` as a
dict; a text's link preview too), receipts statuses, and the account's own receipts
chats it read elsewhere; reactions, edits, deletions and poll votes (message events in
whatsmeow), presence and ringing calls become notes of their own. What is not about this
number's chats (parts without content, other protocol messages, status updates,
channels) becomes nothing. A message this number sent from another device (its phone)
has `from_me`."""

from __future__ import annotations

import base64
import logging
from typing import Any

from neonize.events import (
    CallOfferEv,
    ChatPresenceEv,
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    PresenceEv,
    ReceiptEv,
    StreamReplacedEv,
    TemporaryBanEv,
)
from neonize.proto.Neonize_pb2 import JID, PairStatus, Receipt
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ProtocolMessage

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
    ChatPresenceEv,
    PresenceEv,
    CallOfferEv,
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
# What the account's own receipts are when it read a chat on another device.
SELF_READS = frozenset({Receipt.READ, Receipt.READ_SELF})
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
    if ev_type is ChatPresenceEv:
        return chat_presence(client, ev)
    if ev_type is PresenceEv:
        return presence(client, ev)
    if ev_type is CallOfferEv:
        return call_offer(client, ev)
    if ev_type is ConnectedEv:
        return "connected", {}, b""
    if ev_type is PairStatusEv:
        ok = ev.Status == PairStatus.SUCCESS
        return "pair", {"ok": ok, "jid": jid_fields(ev.ID) if ok else None, "error": ev.Error}, b""
    if ev_type is ReceiptEv:
        return receipt(client, ev)
    if ev_type is LoggedOutEv:
        name = _LOGOUT_REASONS.values_by_number.get(int(ev.Reason))
        return "logged_out", {"reason": str(name.name if name else "logged_out").lower()}, b""
    if ev_type is ConnectFailureEv:
        return "connect_failure", {"reason": connect_failure_reason(ev)}, b""
    if ev_type is TemporaryBanEv:
        return "temporary_ban", {"code": int(ev.Code), "expire": max(int(ev.Expire), 0)}, b""
    kind = _SIMPLE.get(ev_type)
    return None if kind is None else (kind, {}, b"")


def receipt(client: Any, ev: Any) -> Converted | None:
    """A receipt of a message this number sent (delivered, read), or, from this number
    itself, a chat it read on another device (its phone): whatsmeow reports that as a
    Receipt from the own account, `read`, or `read-self` when the account's read receipts
    are off (receipt.go, types.ReceiptTypeReadSelf), the chat in `Chat`."""
    source = ev.MessageSource
    if source.IsFromMe:
        if int(ev.Type) not in SELF_READS or is_status_or_newsletter(source.Chat):
            return None
        fields = parties(client, source)
        return (
            "chat_read",
            {
                "chat": fields["chat"],
                "chat_lid": fields["chat_lid"],
                "ids": [str(i) for i in ev.MessageIDs],
                "timestamp": timestamp(int(ev.Timestamp)),
            },
            b"",
        )
    status = RECEIPTS.get(int(ev.Type))
    if status is None:
        return None
    return "receipt", {"ids": [str(i) for i in ev.MessageIDs], "status": status}, b""


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


def make_jid(user: str, server: str, device: int = 0) -> Any:
    """A JID neonize can hand to Go: its proto2 required fields all set (serializing one
    without them raises)."""
    return JID(User=user, Server=server, Device=device, RawAgent=0, Integrator=0)


def target(to: str) -> Any:
    """The JID a send goes to: an E.164 number (`+5511...`) or a LID (`123...@lid`)."""
    if to.endswith("@lid"):
        return make_jid(to[: -len("@lid")], "lid")
    return make_jid(to.lstrip("+"), "s.whatsapp.net")


def phone_for_lid(client: Any, lid: Any) -> Any:
    """The phone JID whatsmeow's store maps `lid` to, None when it knows none."""
    try:
        pn = client.get_pn_from_lid(make_jid(str(lid.User), "lid"))
    except Exception as exc:
        logger.debug("no phone for %s@lid: %s", lid.User, exc)
        return None
    return pn if is_phone(pn) else None


def lid_for_phone(client: Any, pn: Any) -> Any:
    """The LID whatsmeow's store maps phone JID `pn` to, None when it knows none."""
    try:
        lid = client.get_lid_from_pn(make_jid(str(pn.User), "s.whatsapp.net"))
    except Exception as exc:
        logger.debug("no lid for %s: %s", pn.User, exc)
        return None
    return lid if is_lid(lid) else None


def party(client: Any, jid: Any, alt: Any) -> tuple[str, str | None]:
    """(address, lid) of one party: its phone when known (the JID itself, its alternate
    JID, or the store's LID→phone map), and its LID when known (the JID, its alternate, or
    the store's phone→LID map)."""
    lid = alt if is_lid(alt) else (jid if is_lid(jid) else None)
    phone = jid if is_phone(jid) else (alt if is_phone(alt) else None)
    if phone is None and lid is not None:
        phone = phone_for_lid(client, lid)
    if lid is None and phone is not None:
        lid = lid_for_phone(client, phone)
    shown = phone if phone is not None else jid
    return address(shown), (f"{lid.User}@lid" if lid is not None else None)


# -- messages -------------------------------------------------------------------------------
# The fields of a Message that hold a poll, newest first (WhatsApp's clients send V3 for
# single-choice polls, the others for the rest).
POLL_FIELDS = (
    "pollCreationMessageV3",
    "pollCreationMessageV2",
    "pollCreationMessage",
)
# The fields of a Message that act on another message rather than being one.
ACTION_FIELDS = ("reactionMessage", "protocolMessage", "pollUpdateMessage")
# A contact's chat state as `domain.content.PRESENCES` names it: (state, media) -> name.
_CHAT_STATES: dict[tuple[str, str], str] = {
    ("COMPOSING", "AUDIO"): "recording",
    ("COMPOSING", "TEXT"): "typing",
    ("PAUSED", "AUDIO"): "paused",
    ("PAUSED", "TEXT"): "paused",
}
_STATE_NAMES: Any = ChatPresenceEv.DESCRIPTOR.fields_by_name["State"].enum_type
_MEDIA_NAMES: Any = ChatPresenceEv.DESCRIPTOR.fields_by_name["Media"].enum_type


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


def poll_field(message: Any) -> str | None:
    return next((name for name in POLL_FIELDS if message.HasField(name)), None)


def kind_of(message: Any) -> str | None:
    """`location`, `contacts` or `poll` for those messages, else None."""
    if message.HasField("locationMessage"):
        return "location"
    if message.HasField("contactMessage") or message.HasField("contactsArrayMessage"):
        return "contacts"
    return "poll" if poll_field(message) is not None else None


def has_content(message: Any) -> bool:
    """Whether an (unwrapped) message carries something zapgate delivers as a message:
    text, media, a location, contacts or a poll.

    whatsmeow dispatches every encrypted part of a stanza as its own message event with the
    stanza's id (message.go, whatsmeow#184): in a group, the sender's first message (and
    the first after each sender-key rotation) arrives as a part holding only a
    `senderKeyDistributionMessage` (no content: not an inbound message), then the part
    with the content.
    """
    return (
        text(message) is not None
        or media_field(message) is not None
        or kind_of(message) is not None
    )


def is_status_or_newsletter(chat: Any) -> bool:
    """Status updates (`status@broadcast`) and channels (`@newsletter`) look like chats in
    whatsmeow's events; they are not conversations of this number."""
    return str(chat.Server) in ("broadcast", "newsletter")


def unwrap(message: Any) -> Any:
    """The message inside the wrappers WhatsApp puts around a document with a caption,
    view-once media and an edit (whatsmeow's UnwrapRaw removes them; an event built
    otherwise may still have them)."""
    for wrapper in (
        "documentWithCaptionMessage",
        "viewOnceMessage",
        "viewOnceMessageV2",
        "viewOnceMessageV2Extension",
        "editedMessage",
    ):
        if message.HasField(wrapper):
            return getattr(message, wrapper).message
    return message


def timestamp(raw: int) -> float | None:
    if raw <= 0:
        return None
    return raw / 1000 if raw > 10**11 else float(raw)  # neonize has sent both s and ms


def parties(client: Any, source: Any) -> dict[str, Any]:
    """chat, chat_lid, sender, sender_lid and from_me of a message's source. In a 1:1
    chat the chat is the other party: the sender, or (a message this number sent from
    another device) the recipient, whose alternate JID is `RecipientAlt`."""
    from_me = bool(source.IsFromMe)
    sender, sender_lid = party(client, source.Sender, source.SenderAlt)
    if source.IsGroup:
        chat, chat_lid = address(source.Chat), None
    else:
        alt = source.RecipientAlt if from_me else source.SenderAlt
        chat, chat_lid = party(client, source.Chat, alt)
        if not from_me and chat.endswith("@lid") and sender.startswith("+"):
            chat = sender
    return {
        "chat": chat,
        "chat_lid": chat_lid,
        "sender": sender,
        "sender_lid": sender_lid,
        "from_me": from_me,
    }


def mention(client: Any, raw: str) -> str:
    """A mentioned JID (`user@server`) as an address: its phone when known."""
    user, _, server = raw.partition("@")
    user = user.split(":")[0]
    parsed = make_jid(user, server or "s.whatsapp.net")
    shown, _ = party(client, parsed, JID())
    return shown


def _context(message: Any) -> Any:
    """The ContextInfo of a message's content (where quotes and mentions are), or None."""
    for desc, value in message.ListFields():
        fields = desc.message_type.fields_by_name if desc.message_type is not None else {}
        if "contextInfo" in fields and value.HasField("contextInfo"):
            return value.contextInfo
    return None


def _card(raw: Any) -> dict[str, Any]:
    """A ContactMessage as a `ContactCard` dict, its fields read from the vCard."""
    vcard = str(raw.vcard)
    phone = org = email = None
    for line in vcard.splitlines():
        head, _, value = line.partition(":")
        name = head.split(";")[0].upper()
        if name.endswith("TEL") and phone is None:
            waid = next((p[5:] for p in head.split(";") if p.lower().startswith("waid=")), None)
            digits = waid or "".join(ch for ch in value if ch.isdigit())
            phone = "+" + digits if digits else None
        elif name.endswith("ORG") and org is None:
            org = value.rstrip(";").replace(";", " ").strip() or None
        elif name.endswith("EMAIL") and email is None:
            email = value.strip() or None
    display = str(raw.displayName) or next(
        (ln[3:] for ln in vcard.splitlines() if ln.upper().startswith("FN:")), ""
    )
    return {
        "name": display,
        "phone": phone,
        "organization": org,
        "email": email,
        "vcard": vcard or None,
    }


def extras(client: Any, message: Any) -> dict[str, Any]:
    """The quote, mentions, location, contacts or poll of a message, as `Extras.to_dict`."""
    out: dict[str, Any] = {}
    context = _context(message)
    if context is not None:
        if context.stanzaID:
            author = str(context.participant)
            out["quote"] = {
                "id": str(context.stanzaID),
                "sender": mention(client, author) if author else None,
                "text": text(context.quotedMessage) if context.HasField("quotedMessage") else None,
            }
        if context.mentionedJID:
            out["mentions"] = [mention(client, str(m)) for m in context.mentionedJID]
    preview = link_preview(message)
    if preview is not None:
        out["preview"] = preview
    if message.HasField("locationMessage"):
        loc = message.locationMessage
        out["location"] = {
            "latitude": float(loc.degreesLatitude),
            "longitude": float(loc.degreesLongitude),
            "name": str(loc.name) or None,
            "address": str(loc.address) or None,
        }
    elif message.HasField("contactMessage"):
        out["contacts"] = [_card(message.contactMessage)]
    elif message.HasField("contactsArrayMessage"):
        out["contacts"] = [_card(c) for c in message.contactsArrayMessage.contacts]
    elif (name := poll_field(message)) is not None:
        poll = getattr(message, name)
        options = [str(o.optionName) for o in poll.options]
        count = int(poll.selectableOptionsCount)
        out["poll"] = {
            "question": str(poll.name),
            "options": options,
            # WhatsApp's 0 is "as many as there are".
            "max_selections": count if 0 < count <= len(options) else len(options),
        }
    return out


def link_preview(message: Any) -> dict[str, Any] | None:
    """A text's link preview, as `LinkPreview.to_dict` (the thumbnail in base64): the
    matched link, title and description, and the inline JPEG thumbnail."""
    if not message.HasField("extendedTextMessage"):
        return None
    ext = message.extendedTextMessage
    if not ext.matchedText:
        return None
    thumbnail = bytes(ext.JPEGThumbnail)
    return {
        "url": str(ext.matchedText),
        "title": str(ext.title) or None,
        "description": str(ext.description) or None,
        "thumbnail": base64.b64encode(thumbnail).decode() if thumbnail else None,
    }


def push_name(info: Any) -> str | None:
    """The name the sender set in WhatsApp, as the message carried it (the stanza's
    `notify`); whatsmeow, like WhatsApp, takes "" and "-" for none (message.go)."""
    name = str(info.Pushname).strip()
    return None if name in ("", "-") else name


def message(client: Any, ev: Any) -> Converted | None:
    source = ev.Info.MessageSource
    if is_status_or_newsletter(source.Chat):
        return None  # contacts' stories and channels: never downloaded, never stored
    content = unwrap(ev.Message)
    base = {**parties(client, source), "timestamp": timestamp(int(ev.Info.Timestamp))}
    if any(content.HasField(name) for name in ACTION_FIELDS):
        return _action(client, ev, content, base)
    if not has_content(content):
        # A sender-key-only part of a group stanza: a note would store a content-less row
        # under the id the real content arrives with.
        logger.debug("message %s: a part without content; not delivered", ev.Info.ID)
        return None
    fields: dict[str, Any] = {
        **base,
        "id": str(ev.Info.ID),
        "text": text(content),
        "media": None,
        "extras": extras(client, content),
        "push_name": push_name(ev.Info),
    }
    body = b""
    name = media_field(content)
    if name is not None:
        sub = getattr(content, name)
        kind = MEDIA_FIELDS[name]
        fields["media"] = {
            "kind": "voice" if kind == "audio" and sub.PTT else kind,
            "mime": str(sub.mimetype) or "application/octet-stream",
            "size": int(sub.fileLength),
            "filename": (str(sub.fileName) or None) if name == "documentMessage" else None,
            "sha256": bytes(sub.fileSHA256).hex() or None,
        }
        # The worker hands it back, unread, to have the media downloaded.
        body = content.SerializeToString()
    return "message", fields, body


def _action(client: Any, ev: Any, content: Any, base: dict[str, Any]) -> Converted | None:
    """A reaction, an edit, a deletion or a poll vote carried by a message event; None for
    the other protocol messages (pins, timers, key shares) and unreadable votes."""
    if content.HasField("reactionMessage"):
        reaction = content.reactionMessage
        fields = {
            **base,
            "id": str(ev.Info.ID),
            "target_id": str(reaction.key.ID),
            "emoji": str(reaction.text),
        }
        return "reaction", fields, b""
    if content.HasField("protocolMessage"):
        proto = content.protocolMessage
        if proto.type == ProtocolMessage.REVOKE:
            return "revoked", {**base, "target_id": str(proto.key.ID)}, b""
        if proto.type == ProtocolMessage.MESSAGE_EDIT:
            new_text = text(proto.editedMessage) or ""
            return "edited", {**base, "target_id": str(proto.key.ID), "text": new_text}, b""
        return None
    return _vote(client, ev, content, base)


def _vote(client: Any, ev: Any, content: Any, base: dict[str, Any]) -> Converted | None:
    """A poll vote, decrypted by whatsmeow with the poll's message secret (its store keeps
    the secret of every poll this device sent or received)."""
    poll_id = str(content.pollUpdateMessage.pollCreationMessageKey.ID)
    try:
        vote = client.decrypt_poll_vote(ev)
    except Exception as exc:
        logger.warning("a vote on poll %s could not be decrypted: %s", poll_id, exc)
        return None
    hashes = [bytes(h).hex() for h in vote.selectedOptions]
    fields = {**base, "poll_id": poll_id, "selected_hashes": hashes}
    fields.pop("from_me")
    return "poll_vote", fields, b""


def chat_presence(client: Any, ev: Any) -> Converted:
    state = _STATE_NAMES.values_by_number[int(ev.State)].name
    media = _MEDIA_NAMES.values_by_number[int(ev.Media)].name
    fields = parties(client, ev.MessageSource)
    fields.pop("from_me")
    return "presence", {**fields, "state": _CHAT_STATES[(state, media)], "last_seen": None}, b""


def presence(client: Any, ev: Any) -> Converted:
    who, lid = party(client, ev.From, JID())
    last_seen = timestamp(int(ev.LastSeen)) if ev.Unavailable else None
    fields = {
        "chat": who,
        "chat_lid": lid,
        "sender": who,
        "sender_lid": lid,
        "state": "unavailable" if ev.Unavailable else "available",
        "last_seen": last_seen,
    }
    return "presence", fields, b""


def _attr(node: Any, name: str) -> str | None:
    """A node attribute as whatsmeow's AttrGetter reads a string (neonize encodes each
    attribute as text, integer, boolean or JID)."""
    for attr in node.Attrs:
        if attr.name == name:
            kind = attr.WhichOneof("Value")
            if kind == "jid":
                return f"{attr.jid.User}@{attr.jid.Server}"
            return None if kind is None else str(getattr(attr, kind))
    return None


def call_offer(client: Any, ev: Any) -> Converted:
    """A call ringing this number (whatsmeow's CallOffer, call.go): the caller is the
    call's creator, its alternate JID the phone (`caller_pn`) of a LID creator or the LID
    (`caller_lid`) of a phone one. The offer node says the rest, as WhatsApp's clients
    read it: a `video` child for a video call; `type="group"`, a `group-jid` or a
    `group_info` child for a group call."""
    meta = ev.basicCallMeta
    caller, caller_lid = party(client, meta.callCreator, meta.callCreatorAlt)
    offer = ev.data
    children = {str(n.Tag) for n in offer.Nodes}
    group = (
        _attr(offer, "type") == "group"
        or bool(_attr(offer, "group-jid"))
        or "group_info" in children
    )
    fields = {
        "id": str(meta.callID),
        "caller": caller,
        "caller_lid": caller_lid,
        "timestamp": timestamp(int(meta.timestamp)),
        "video": "video" in children,
        "group": group,
    }
    return "call", fields, b""


def connect_failure_reason(ev: Any) -> str:
    """A ConnectFailureEv as a DISCONNECTED reason: WhatsApp's reason name and message."""
    name = _CONNECT_FAILURES.values_by_number.get(int(ev.Reason))
    label = name.name.lower() if name else str(int(ev.Reason))
    detail = f": {ev.Message}" if ev.Message else ""
    return f"connect_failure {label}{detail}"[:300]
