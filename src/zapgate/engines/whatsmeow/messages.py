"""Inside a host process: the messages beyond plain text and media, built with neonize's
own builders and sent through whatsmeow (blocking calls into Go: the host runs them on its
call threads with a share of the Go maps). Their arguments are the plain dicts of the
request (`domain.content`'s `to_dict` forms); addresses are E.164 phones or `<digits>@lid`.

* A quote becomes whatsmeow's ContextInfo (stanzaID, participant, quotedMessage) through
  neonize's `build_reply_message`, which needs the quoted message as an event: it is
  rebuilt from the quote's id, author and text (WhatsApp shows the text in the bubble).
* whatsmeow keeps the message secret of every poll it sends (its store's msg secrets):
  that is what lets `decrypt_poll_vote` read the votes (convert.py).
* A link preview is what neonize's `_generate_link_preview` builds (an ExtendedTextMessage
  with matchedText, title, description and the JPEG thumbnail inline, the thumbnail also
  uploaded as a link thumbnail), from the preview the gateway fetched: neonize's own
  fetcher would reach any address, past the SSRF guard.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from neonize.proto.Neonize_pb2 import Message as EventMessage
from neonize.proto.Neonize_pb2 import MessageInfo, MessageSource
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    ContactMessage,
    ContactsArrayMessage,
    ContextInfo,
    ExtendedTextMessage,
    LocationMessage,
    Message,
)
from neonize.utils.enum import (
    ChatPresence,
    ChatPresenceMedia,
    MediaType,
    Presence,
    ReceiptType,
    VoteType,
)
from PIL import Image

from zapgate.engines.whatsmeow import convert

logger = logging.getLogger(__name__)

# A chat presence zapgate shows, as whatsmeow's (state, media).
CHAT_PRESENCES: dict[str, tuple[ChatPresence, ChatPresenceMedia]] = {
    "typing": (ChatPresence.CHAT_PRESENCE_COMPOSING, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
    "recording": (
        ChatPresence.CHAT_PRESENCE_COMPOSING,
        ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO,
    ),
    "paused": (ChatPresence.CHAT_PRESENCE_PAUSED, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
}


def _own(client: Any) -> Any:
    """This device's account JID (without the device)."""
    me = client.get_me().JID
    return convert.target("+" + str(me.User))


def _jid_string(jid: Any) -> str:
    return f"{jid.User}@{jid.Server}"


def quoted(client: Any, chat: Any, quote: dict[str, Any]) -> Any:
    """The quoted message as the event neonize's reply builders read: its id, its author
    (this number when the quote names none) and its text."""
    sender = convert.target(str(quote["sender"])) if quote.get("sender") else _own(client)
    return EventMessage(
        Info=MessageInfo(
            ID=str(quote["id"]),
            MessageSource=MessageSource(
                Chat=chat, Sender=sender, IsFromMe=not quote.get("sender"), IsGroup=False
            ),
        ),
        Message=Message(conversation=str(quote.get("text") or "")),
    )


def _send(client: Any, to: Any, part: Any, quote: dict[str, Any] | None) -> str:
    """Send one message part (an ExtendedTextMessage, a LocationMessage, ...), replying to
    `quote` when given; returns WhatsApp's id."""
    if quote:
        message = client.build_reply_message(part, quoted(client, to, quote))
    else:
        name = type(part).__name__
        message = Message(**{name[0].lower() + name[1:]: part})
    return str(client.send_message(to, message).ID)


def send_text(
    client: Any,
    to: Any,
    text: str,
    quote: dict[str, Any] | None,
    mentions: list[str],
    preview: dict[str, Any] | None = None,
    thumbnail: bytes = b"",
) -> str:
    """A text; with a quote, mentions or a link preview ({url, title, description}, the
    JPEG `thumbnail` apart) an ExtendedTextMessage."""
    if not quote and not mentions and not preview:
        return str(client.send_message(to, Message(conversation=text)).ID)
    mentioned = [_jid_string(convert.target(m)) for m in mentions]
    part = ExtendedTextMessage(text=text, contextInfo=ContextInfo(mentionedJID=mentioned))
    if preview:
        part.MergeFrom(link_preview(client, preview, thumbnail))
    return _send(client, to, part, quote)


def link_preview(client: Any, preview: dict[str, Any], thumbnail: bytes) -> Any:
    """The preview fields of an ExtendedTextMessage, as neonize's `_generate_link_preview`
    sets them. The thumbnail rides inline (what every WhatsApp shows) and, uploaded as a
    link thumbnail, in high quality; a failed upload leaves the inline one alone."""
    part = ExtendedTextMessage(
        matchedText=str(preview["url"]),
        title=str(preview.get("title") or ""),
        description=str(preview.get("description") or ""),
        previewType=ExtendedTextMessage.PreviewType.NONE,
    )
    if not thumbnail:
        return part
    part.JPEGThumbnail = thumbnail
    try:
        with Image.open(io.BytesIO(thumbnail)) as img:
            width, height = img.size
        upload = client.upload(thumbnail, MediaType.MediaLinkThumbnail)
    except Exception as exc:
        logger.warning("link preview thumbnail not uploaded (sent inline only): %s", exc)
        return part
    part.MergeFrom(
        ExtendedTextMessage(
            thumbnailDirectPath=upload.DirectPath,
            thumbnailSHA256=upload.FileSHA256,
            thumbnailEncSHA256=upload.FileEncSHA256,
            mediaKey=upload.MediaKey,
            mediaKeyTimestamp=int(time.time()),
            thumbnailWidth=width,
            thumbnailHeight=height,
        )
    )
    return part


def vcard(card: dict[str, Any]) -> str:
    """The card's own vCard, or one built as WhatsApp's apps write it (`waid` links the
    number to its WhatsApp account)."""
    if card.get("vcard"):
        return str(card["vcard"])
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{card['name']}"]
    if card.get("organization"):
        lines.append(f"ORG:{card['organization']};")
    phone = str(card.get("phone") or "")
    if phone:
        lines.append(f"TEL;type=CELL;type=VOICE;waid={phone.lstrip('+')}:{phone}")
    if card.get("email"):
        lines.append(f"EMAIL;type=INTERNET:{card['email']}")
    lines.append("END:VCARD")
    return "\n".join(lines)


def send_location(
    client: Any, to: Any, location: dict[str, Any], quote: dict[str, Any] | None
) -> str:
    part = LocationMessage(
        degreesLatitude=float(location["latitude"]),
        degreesLongitude=float(location["longitude"]),
        name=location.get("name") or None,
        address=location.get("address") or None,
    )
    return _send(client, to, part, quote)


def send_contacts(
    client: Any, to: Any, contacts: list[dict[str, Any]], quote: dict[str, Any] | None
) -> str:
    cards = [ContactMessage(displayName=str(c["name"]), vcard=vcard(c)) for c in contacts]
    if len(cards) == 1:
        return _send(client, to, cards[0], quote)
    part = ContactsArrayMessage(displayName=f"{len(cards)} contacts", contacts=cards)
    return _send(client, to, part, quote)


def send_poll(client: Any, to: Any, poll: dict[str, Any]) -> str:
    options = [str(o) for o in poll["options"]]
    most = int(poll.get("max_selections") or 1)
    # neonize's VoteType names 1 (one choice) and 0 (any number); whatsmeow takes any
    # count up to the number of options.
    message = client.build_poll_vote_creation(
        str(poll["question"]), options, VoteType.SINGLE if most == 1 else VoteType.MULTIPLE
    )
    if 1 < most < len(options):
        message.pollCreationMessage.selectableOptionsCount = most
    return str(client.send_message(to, message).ID)


def _author(client: Any, chat: Any, target: dict[str, Any]) -> Any:
    """The author of a message of `chat` (whatsmeow's MessageKey needs it)."""
    if target.get("from_me"):
        return _own(client)
    return convert.target(str(target["sender"])) if target.get("sender") else chat


def react(client: Any, chat: Any, target: dict[str, Any], emoji: str) -> str:
    message = client.build_reaction(chat, _author(client, chat, target), str(target["id"]), emoji)
    return str(client.send_message(chat, message).ID)


def edit(client: Any, chat: Any, target_id: str, text: str) -> str:
    return str(client.edit_message(chat, target_id, Message(conversation=text)).ID)


def revoke(client: Any, chat: Any, target: dict[str, Any]) -> str:
    return str(client.revoke_message(chat, _author(client, chat, target), str(target["id"])).ID)


def mark_read(client: Any, chat: Any, ids: list[str], sender: str | None) -> None:
    """Read receipts; in a 1:1 chat whatsmeow ignores the sender (the chat is it)."""
    author = convert.target(sender) if sender else chat
    client.mark_read(*ids, chat=chat, sender=author, receipt=ReceiptType.READ)


def set_presence(client: Any, chat: Any, state: str, *, announce: bool) -> None:
    """Show `state` in `chat`. `announce`: first mark this device online and subscribe to
    the chat's presence: WhatsApp sends a contact's presence and chat states only to a
    client that is online and subscribed (whatsmeow's SubscribePresence)."""
    if announce:
        client.send_presence(Presence.AVAILABLE)
        client.subscribe_presence(chat)
    chat_state, media = CHAT_PRESENCES[state]
    client.send_chat_presence(chat, chat_state, media)
