"""SimNetwork: an in-process simulated WhatsApp network, servers and phones.

A *device* is what a session is to WhatsApp: a linked companion (the sim engine uses its
client id as device id). A *phone* is a simulated handset known by its E.164 number; it
scans QRs, enters pairing codes, writes to linked numbers and reads everything it gets.

Message ids are the network's own, as on WhatsApp: a send returns the id the network gave
the message (`3EB0` + 16 hex digits), and the receipts (`ack` events: delivered, then
read) and the recipient's inbox name that id, never the sender's. A device's send carries
the sender's request id: the same request again (a retry after a crash) gets the first
send's id back and is not delivered twice. WhatsApp cannot do that for zapgate (whatsmeow
makes the id and neonize cannot pass one in), so this is where the sim is kinder than the
real network: see docs/architecture.md.

LIDs: every phone has a stable LID (`simnet.ids.lid_for`). A phone can be made
LID-addressed (`address_by_lid`): its messages then reach devices with the LID as chat and
sender, and its phone number in `sender_alt` only when it shares it, as whatsmeow delivers
`@lid` chats (`SenderAlt`); other phones' messages carry their LID in `sender_alt`. A
device learns a phone's LID <-> phone mapping when it gets a message with both, or sends
to the phone by number (WhatsApp's usync); `pn_for_lid` answers from what that device
learned, like whatsmeow's store (`get_pn_from_lid`). Sends take a phone or a LID.

Beyond text and media, a message may quote another of its chat, mention phones, or be a
location, contact cards or a poll (`simnet.content`). Acting on a message (a reaction, an
edit of one's own message within 15 minutes, a delete for everyone of one's own message),
read receipts and presence reach the other side of the chat: its linked devices as events
(`reaction`, `edit`, `revoke`, `vote`, `presence`, addressed like messages), and its phone's
log (`phone_log`). A message the account's own phone sends reaches the account's linked
devices as a `message` with `from_me`, its chat being the recipient; a chat the account
reads on its phone (`phone_read`) or on one linked device reaches its other linked devices
as a `read` event. A text may carry its link's preview (title, description, thumbnail).

Push names: every phone has the name its user set in WhatsApp (`set_push_name`; until
then a default derived from its number, `Phone 0003`), and every `message` event carries
its sender's (`push_name`), as WhatsApp's stanzas do (`notify`): a message the account's
own phone sent carries the account's name.

Contacts and calls. Every number is on WhatsApp unless made otherwise (`off_whatsapp`):
nothing is sent to or from such a number, and a check (`check_numbers`, WhatsApp's usync)
says so; checking a number teaches the device its LID mapping. A phone has a profile
(`set_profile`: about text, business account, profile picture, whose URL is on the
reserved `.invalid` TLD so nothing can ever fetch it). An account blocks phones
(`set_blocked`, from any of its devices): their messages, actions and calls no longer
reach it (WhatsApp drops them server-side, so a blocked sender's message gets no receipt),
nor does its presence reach them. A linked number's phone keeps an address book
(`phone_save_contact`) that its devices read (`address_book`; only numbers on WhatsApp
sync). A phone calls a linked number (`phone_call`): each of its devices gets a `call`
event addressed like a message; a device rejecting it (`reject_call`) shows in the
caller's log as `call_rejected`.

Each device has a stream of events (`paired`, `message`, `ack`, `logged_out`, and the
actions above) numbered by `seq`. A device reads them with `next_events(after=...)`,
which also acknowledges every event up to `after`, like a server-side ack: what a device
has not acknowledged is handed to it again after it reconnects (at-least-once, as
WhatsApp does for offline devices). Being offline is not an event in the stream but a
property of the connection: a device that is not connected reads one synthetic
`disconnected` event.

Linked devices ({device_id: {phone, token}}) are persisted to `state_path` so a restart of
the process keeps the links; events, QRs and codes are ephemeral, as on the real network.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from zapgate.aio import BackgroundTasks
from zapgate.domain.contacts import MAX_CHECK
from zapgate.domain.content import CHAT_PRESENCES, EDIT_WINDOW_SECONDS
from zapgate.domain.ids import (
    identity,
    is_lid,
    is_valid_client_id,
    new_message_id,
    normalize_phone,
    normalize_recipient,
)
from zapgate.errors import (
    ConfigError,
    DeviceNotLinked,
    DeviceOffline,
    NotFound,
    NumberNotLinked,
    PairCodeNotFound,
    QrNotFound,
    ValidationFailed,
)
from zapgate.i18n import N_
from zapgate.jsonfile import atomic_write_json, read_json
from zapgate.simnet.content import check_extras, check_media_kind, check_presence, option_hash
from zapgate.simnet.ids import (
    default_push_name,
    lid_for,
    new_call_id,
    new_pair_code,
    new_picture_id,
    new_qr,
    new_token,
    normalize_pair_code,
)

logger = logging.getLogger(__name__)

# A device that never reads must not grow without bound; the oldest events go first.
MAX_QUEUED_EVENTS = 10_000
# Request ids remembered for retries, oldest forgotten first.
MAX_REQUESTS = 100_000
# Messages remembered to be quoted, reacted to, edited, deleted or voted on.
MAX_MESSAGES = 100_000
# What a phone saw besides messages, per phone.
MAX_LOG = 10_000
# Calls remembered to be rejected, oldest forgotten first.
MAX_CALLS = 10_000
# WhatsApp's about text is at most 139 characters.
MAX_ABOUT = 139
# The longest name an address book keeps for a contact.
MAX_CONTACT_NAME = 256
# Where profile pictures are served: the reserved `.invalid` TLD never resolves.
PICTURE_URL = "https://pps.whatsapp.invalid/v/{id}.jpg"
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class LinkedDevice:
    phone: str
    token: str


@dataclass(slots=True)
class _Device:
    id: str
    seq: int = 0
    events: deque[dict[str, Any]] = field(default_factory=deque)
    online: bool = False
    drop_reason: str = "not connected to the simulated network"
    qr: str | None = None
    pair_code: str | None = None
    # Created unbound; since Python 3.10 it binds to the loop that first uses it.
    cond: asyncio.Condition = field(default_factory=asyncio.Condition)


@dataclass(slots=True)
class _Message:
    """What the network remembers of a message, to act on it later."""

    id: str
    author: str
    peer: str
    sent_at: datetime
    text: str | None
    kind: str | None = None  # location, contacts, poll: not editable
    poll: tuple[str, ...] = ()
    max_selections: int = 1
    revoked: bool = False
    read: bool = False  # by its recipient
    dropped: bool = False  # its recipient blocked its author: only the author knows it

    def between(self, one: str, other: str) -> bool:
        return {self.author, self.peer} == {one, other}


@dataclass(slots=True)
class _Profile:
    """What a phone's WhatsApp profile shows besides its push name."""

    about: str | None = None
    business: bool = False
    picture: str | None = None  # the id in its picture's URL


@dataclass(slots=True)
class _Call:
    caller: str
    callee: str
    rejected: bool = False


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _media(media: Mapping[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(what an inbox keeps, what a receiving device's event carries) of a media message.
    `media` is {kind, mime, filename?, data: bytes}; events carry the bytes as base64 so
    they travel as JSON."""
    if media is None:
        return None, None
    data = media["data"]
    if not isinstance(data, bytes | bytearray):
        raise ValidationFailed(N_("media.data: must be bytes"))
    meta = {
        "kind": check_media_kind(str(media["kind"])),
        "mime": str(media.get("mime") or "application/octet-stream"),
        "filename": media.get("filename"),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return meta, {**meta, "data": base64.b64encode(data).decode()}


MAX_EMOJI_CHARS = 32
# WhatsApp's profile names are at most 25 characters.
MAX_PUSH_NAME = 25


def _emoji(emoji: str) -> str:
    """A reaction: one emoji (a short string), or "" to remove one."""
    if len(emoji) > MAX_EMOJI_CHARS or emoji.strip() != emoji:
        raise ValidationFailed(
            N_("{emoji!r} is not a reaction"),
            hint=N_('A reaction is one emoji, or "" to remove it.'),
            emoji=emoji[:40],
        )
    return emoji


def _no_message(message_id: str, me: str, other: str) -> NotFound:
    return NotFound(
        N_("no message {id} in the chat between {phone} and {other}"),
        hint=N_("Use WhatsApp's id of a message of that chat."),
        id=message_id[:80],
        phone=me,
        other=other,
    )


def _check_device_id(device_id: str) -> str:
    if not is_valid_client_id(device_id):
        raise ValidationFailed(
            N_("{device_id!r} is not a valid device id"),
            hint=N_("A device id is 1-64 letters, digits, '-' or '_' (a session's client id)."),
            device_id=device_id[:80],
        )
    return device_id


class SimNetwork:
    def __init__(
        self,
        state_path: Path | None = None,
        *,
        deliver_delay: float = 0.05,
        read_delay: float = 0.2,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.state_path = state_path
        self.clock = clock
        self.deliver_delay = deliver_delay
        self.read_delay = max(read_delay, deliver_delay)
        self._links: dict[str, LinkedDevice] = self._load()
        self._devices: dict[str, _Device] = {}
        self._qrs: dict[str, str] = {}  # qr -> device id
        self._codes: dict[str, tuple[str, str]] = {}  # pair code -> (device id, phone)
        self._inboxes: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        # (device id, request id) -> the id the network gave that send.
        self._requests: dict[tuple[str, str], str] = {}
        self._lid_phones: dict[str, str] = {}  # LID -> phone, of every phone seen
        # LID-addressed phones -> whether their messages carry their number (sender_alt).
        self._by_lid: dict[str, bool] = {}
        # device id -> phones whose LID <-> phone mapping the device has learned.
        self._learned: defaultdict[str, set[str]] = defaultdict(set)
        self._messages: dict[str, _Message] = {}
        self._names: dict[str, str] = {}  # phone -> the push name it set
        self._off: set[str] = set()  # numbers with no WhatsApp account
        self._profiles: dict[str, _Profile] = {}
        # account's phone -> the phones it blocked.
        self._blocked: defaultdict[str, set[str]] = defaultdict(set)
        # account's phone -> its phone's address book {phone: name}.
        self._books: defaultdict[str, dict[str, str]] = defaultdict(dict)
        self._calls: dict[str, _Call] = {}
        self._logs: defaultdict[str, deque[dict[str, Any]]] = defaultdict(
            lambda: deque(maxlen=MAX_LOG)
        )
        self._tasks = BackgroundTasks()

    # -- persistence -------------------------------------------------------------------------
    def _load(self) -> dict[str, LinkedDevice]:
        if self.state_path is None or not self.state_path.exists():
            return {}
        try:
            data = read_json(self.state_path)
            devices = data["devices"]
            return {
                str(dev_id): LinkedDevice(phone=str(d["phone"]), token=str(d["token"]))
                for dev_id, d in devices.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Refuse rather than start empty: silently forgetting every link would make
            # every session ask for a new QR.
            raise ConfigError(
                N_("cannot read the simulated network state {path}: {detail}"),
                hint=N_("Fix or delete the file (deleting it unlinks every sim session)."),
                path=str(self.state_path),
                detail=str(exc),
            ) from exc

    def _save(self) -> None:
        if self.state_path is None:
            return
        devices = {k: {"phone": v.phone, "token": v.token} for k, v in self._links.items()}
        atomic_write_json(self.state_path, {"version": STATE_VERSION, "devices": devices})

    # -- helpers -----------------------------------------------------------------------------
    def _device(self, device_id: str) -> _Device:
        dev = self._devices.get(device_id)
        if dev is None:
            dev = self._devices[_check_device_id(device_id)] = _Device(id=device_id)
        return dev

    def _online(self, device_id: str) -> _Device:
        dev = self._device(device_id)
        if not dev.online:
            raise DeviceOffline(device_id=device_id)
        return dev

    def _forget_codes(self, dev: _Device) -> None:
        """A new connection, a link or a drop makes the device's QR and code useless."""
        if dev.qr is not None:
            self._qrs.pop(dev.qr, None)
            dev.qr = None
        if dev.pair_code is not None:
            self._codes.pop(dev.pair_code, None)
            dev.pair_code = None

    async def _wake(self, dev: _Device) -> None:
        async with dev.cond:
            dev.cond.notify_all()

    async def _push(self, dev: _Device, kind: str, **data: Any) -> None:
        dev.seq += 1
        dev.events.append({**data, "seq": dev.seq, "type": kind})
        while len(dev.events) > MAX_QUEUED_EVENTS:
            dropped = dev.events.popleft()
            logger.warning("device %s: queue full, dropped event %s", dev.id, dropped["seq"])
        await self._wake(dev)

    async def _link(self, device_id: str, phone: str) -> str:
        dev = self._device(device_id)
        self._forget_codes(dev)
        link = self._links[device_id] = LinkedDevice(phone=phone, token=new_token())
        self._save()
        logger.info("simnet: device %s linked to %s", device_id, phone)
        creds = {"device_id": device_id, "phone": phone, "token": link.token}
        await self._push(dev, "paired", phone=phone, creds=creds)
        return device_id

    def _lid(self, phone: str) -> str:
        lid = lid_for(phone)
        self._lid_phones[lid] = phone
        return lid

    def _addressed(self, phone: str) -> dict[str, Any]:
        """How a message from `phone` names its chat and sender to a receiving device."""
        lid = self._lid(phone)
        if phone in self._by_lid:
            alt = phone if self._by_lid[phone] else None
            return {"chat": lid, "sender": lid, "sender_alt": alt}
        return {"chat": phone, "sender": phone, "sender_alt": lid}

    def _push_name(self, phone: str) -> str:
        return self._names.get(phone) or default_push_name(phone)

    def _named(self, kind: str, author: str) -> dict[str, Any]:
        """A message event carries its author's push name."""
        return {"push_name": self._push_name(author)} if kind == "message" else {}

    async def _deliver(self, device_id: str, kind: str, actor: str, **data: Any) -> None:
        """An event about `actor`'s message or action, addressed as the device sees it."""
        addressed = self._addressed(actor)
        if addressed["sender_alt"] is not None:
            self._learned[device_id].add(actor)  # a message with both addresses teaches it
        named = self._named(kind, actor)
        await self._push(self._device(device_id), kind, **addressed, **named, **data)

    async def _deliver_own(
        self, device_id: str, kind: str, owner: str, peer: str, **data: Any
    ) -> None:
        """An event about what the device's own account did elsewhere (its phone): the
        chat is the other side, named as it names itself, with its other address beside."""
        chat = self._addressed(peer)
        if chat["sender_alt"] is not None:
            self._learned[device_id].add(peer)
        await self._push(
            self._device(device_id),
            kind,
            chat=chat["chat"],
            chat_alt=chat["sender_alt"],
            sender=owner,
            sender_alt=self._lid(owner),
            from_me=True,
            **self._named(kind, owner),
            **data,
        )

    async def _reach(
        self,
        actor: str,
        peer: str,
        kind: str,
        *,
        log: Mapping[str, Any],
        event: Mapping[str, Any] | None,
        skip: str | None = None,
    ) -> None:
        """`actor`'s action reaches the other side of the chat: `peer`'s phone (its log) and
        its linked devices (an event, unless `event` is None), but the acting one. Nothing
        reaches a peer that blocked `actor`, nor `actor`'s presence a peer it blocked."""
        if self._blocks(peer, actor) or (kind == "presence" and self._blocks(actor, peer)):
            return
        now = self.clock().isoformat()
        self._logs[peer].append({"type": kind, "from": actor, "timestamp": now, **log})
        if event is None:
            return
        for device_id in self._devices_of(peer):
            if device_id != skip:
                await self._deliver(device_id, kind, actor, timestamp=now, **event)

    def _peer(self, to: str) -> str:
        """The phone that `to` (a phone or a LID) names; it must be on WhatsApp."""
        to = normalize_recipient(to)
        if not is_lid(to):
            return self._on_whatsapp(to)
        phone = self._lid_phones.get(to)
        if phone is None:
            raise NotFound(N_("no account on the simulated network has the LID {lid}"), lid=to)
        return self._on_whatsapp(phone)

    def _on_whatsapp(self, phone: str) -> str:
        if phone in self._off:
            raise NotFound(
                N_("{phone} is not on WhatsApp"),
                hint=N_("Check the number: it has no WhatsApp account to reach."),
                phone=phone,
            )
        return phone

    def _blocks(self, account: str, phone: str) -> bool:
        """Whether the account of `account` blocked `phone`."""
        return phone in self._blocked.get(account, ())

    def _profile(self, phone: str) -> _Profile:
        return self._profiles.get(phone) or _Profile()

    def _linked_phone(self, device_id: str) -> str:
        """The phone of an online, linked device."""
        self._online(device_id)
        link = self._links.get(device_id)
        if link is None:
            raise DeviceNotLinked(device_id=device_id)
        return link.phone

    def _remember(self, msg: _Message) -> _Message:
        """Keep a new message; it is dropped when its recipient blocked its author."""
        msg.dropped = self._blocks(msg.peer, msg.author)
        self._messages[msg.id] = msg
        if len(self._messages) > MAX_MESSAGES:
            del self._messages[next(iter(self._messages))]
        return msg

    def _find(self, me: str, other: str, target_id: str) -> _Message:
        """The message `target_id` of the chat between `me` and `other`, as `me` knows it."""
        msg = self._messages.get(target_id)
        if msg is None or not msg.between(me, other) or (msg.dropped and msg.author != me):
            raise _no_message(target_id, me, other)
        return msg

    def _find_ref(self, me: str, other: str, target: Mapping[str, Any]) -> _Message:
        """The message a MessageRef names: its id, and whether `me` sent it (WhatsApp's
        MessageKey: the same id with the other `from_me` is another message)."""
        msg = self._find(me, other, str(target["id"]))
        if bool(target.get("from_me")) != (msg.author == me):
            raise _no_message(msg.id, me, other)
        return msg

    def _own(self, me: str, other: str, target_id: str, *, edit: bool) -> _Message:
        """A message `me` sent to `other` that `me` may still edit (or delete)."""
        msg = self._find(me, other, target_id)
        if msg.author != me:
            if edit:
                raise ValidationFailed(
                    N_("message {id} was sent by {author}: only its sender can edit it"),
                    id=msg.id,
                    author=msg.author,
                )
            raise ValidationFailed(
                N_("message {id} was sent by {author}: only its sender can delete it"),
                hint=N_("A message someone else sent can only be deleted for everyone by them."),
                id=msg.id,
                author=msg.author,
            )
        if msg.revoked:
            raise ValidationFailed(N_("message {id} was deleted"), id=msg.id)
        if not edit:
            return msg
        if msg.kind is not None:
            raise ValidationFailed(
                N_("message {id} is a {kind}: only texts and captions can be edited"),
                id=msg.id,
                kind=msg.kind,
            )
        if self.clock() - msg.sent_at > timedelta(seconds=EDIT_WINDOW_SECONDS):
            raise ValidationFailed(
                N_("message {id} was sent more than {minutes} minutes ago"),
                hint=N_("WhatsApp lets a message be edited for {minutes} minutes only."),
                id=msg.id,
                minutes=EDIT_WINDOW_SECONDS // 60,
            )
        return msg

    def _inbox_entry(self, phone: str, message_id: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self._inboxes[phone]) if e["id"] == message_id), None)

    def _quote(
        self, raw: Mapping[str, Any] | None, me: str, other: str, *, known: bool
    ) -> dict[str, Any] | None:
        """The message a reply quotes: {id, from, text}. A phone quotes a message of its
        chat (`known`); a device names the author itself, as WhatsApp's ContextInfo does."""
        if not raw:
            return None
        quote_id = str(raw["id"])
        msg = self._find(me, other, quote_id) if known else self._messages.get(quote_id)
        if msg is not None and msg.between(me, other):
            return {"id": quote_id, "from": msg.author, "text": msg.text}
        sender = raw.get("sender")
        author = me if sender is None else self._peer(str(sender))
        return {"id": quote_id, "from": author, "text": raw.get("text")}

    def _quote_for(self, quote: dict[str, Any] | None, reader: str) -> dict[str, Any]:
        """The `quote` of a message event, as the account `reader` reads it: the author is
        None when it is the reader itself (Quote.sender)."""
        if quote is None:
            return {}
        author = quote["from"]
        sender = None if author == reader else self._addressed(author)["sender"]
        return {"quote": {"id": quote["id"], "sender": sender, "text": quote["text"]}}

    @staticmethod
    def _record(
        message_id: str,
        author: str,
        peer: str,
        sent_at: datetime,
        text: str | None,
        extras: Mapping[str, Any],
    ) -> _Message:
        kind = next((k for k in ("location", "contacts", "poll") if k in extras), None)
        poll = extras.get("poll") or {}
        return _Message(
            id=message_id,
            author=author,
            peer=peer,
            sent_at=sent_at,
            text=text,
            kind=kind,
            poll=tuple(poll.get("options", ())),
            max_selections=int(poll.get("max_selections", 1)),
        )

    def _devices_of(self, phone: str) -> list[str]:
        return [dev_id for dev_id, link in self._links.items() if link.phone == phone]

    # -- the device side ---------------------------------------------------------------------
    async def connect(self, device_id: str, creds: Mapping[str, Any] | None) -> str | None:
        """Open the device's connection. Returns the linked phone when `creds` prove the
        device is linked (resume without a scan), else None (the device needs a QR)."""
        dev = self._device(device_id)
        self._forget_codes(dev)
        dev.online = True
        link = self._links.get(device_id)
        if (
            creds is not None
            and link is not None
            and str(creds.get("device_id", device_id)) == device_id
            and hmac.compare_digest(str(creds.get("token", "")), link.token)
        ):
            await self._wake(dev)
            return link.phone
        # An unlinked device has nothing pending from an older link (and must not replay
        # that link's `logged_out`).
        dev.events.clear()
        await self._wake(dev)
        return None

    async def request_qr(self, device_id: str) -> str:
        """A fresh QR for the device; the previous one stops working."""
        dev = self._online(device_id)
        self._forget_codes(dev)
        qr = new_qr()
        dev.qr, self._qrs[qr] = qr, device_id
        return qr

    async def pair_code(self, device_id: str, phone: str) -> str:
        """An 8-character code that `phone` can enter instead of scanning a QR."""
        phone = normalize_phone(phone)
        dev = self._online(device_id)
        if dev.pair_code is not None:
            self._codes.pop(dev.pair_code, None)
        code = new_pair_code()
        while code in self._codes:
            code = new_pair_code()
        dev.pair_code, self._codes[code] = code, (device_id, phone)
        return code

    async def send(
        self,
        device_id: str,
        request_id: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> str:
        """The device sends `text` (a media message's caption when `media` is given) to
        `to`, a phone or a LID, with `extras` (Extras.to_dict(): a quote, mentions, or a
        location, contacts or a poll); returns the id the network gave the message.
        Receipts follow: delivered and read later (simulated phones read everything)."""
        to = normalize_recipient(to)
        phone = self._peer(to)
        meta, carried = _media(media)
        checked = check_extras(extras, text=text, has_media=media is not None)
        dev = self._online(device_id)
        me = self._linked_phone(device_id)
        if not is_lid(to):
            self._lid(phone)
            self._learned[device_id].add(phone)  # sending by number looks its LID up
        known = self._requests.get((device_id, request_id))
        if known is not None:
            return known  # the same request again: already sent, not sent twice
        quote = self._quote((extras or {}).get("quote"), me, phone, known=False)
        message_id = new_message_id()
        self._requests[(device_id, request_id)] = message_id
        if len(self._requests) > MAX_REQUESTS:
            del self._requests[next(iter(self._requests))]
        now = self.clock()
        if self._remember(self._record(message_id, me, phone, now, text, checked)).dropped:
            return message_id  # dropped server-side: never delivered, no receipts
        entry: dict[str, Any] = {
            "id": message_id,
            "from": me,
            "text": text,
            "timestamp": now.isoformat(),
            **checked,
        }
        if quote is not None:
            entry["quote"] = {"id": quote["id"], "from": quote["from"]}
        if meta is not None:
            entry["media"] = meta
        self._inboxes[phone].append(entry)
        for other_id in self._devices_of(phone):
            if other_id != device_id:
                await self._deliver(
                    other_id,
                    "message",
                    me,
                    id=message_id,
                    text=text,
                    timestamp=now.isoformat(),
                    media=carried,
                    **checked,
                    **self._quote_for(quote, phone),
                )
        self._tasks.create(self._later_acks(dev, message_id), name=f"simnet:acks:{message_id}")
        return message_id

    async def react(self, device_id: str, chat: str, target: Mapping[str, Any], emoji: str) -> str:
        """The device reacts with `emoji` ("" removes its reaction) to the message
        `target` ({id, from_me}) of `chat`; returns the reaction's id."""
        peer = self._peer(chat)
        me = self._linked_phone(device_id)
        msg = self._find_ref(me, peer, target)
        reaction_id = new_message_id()
        emoji = _emoji(emoji)
        await self._reach(
            me,
            peer,
            "reaction",
            log={"id": msg.id, "emoji": emoji},
            event={"id": reaction_id, "target_id": msg.id, "emoji": emoji},
            skip=device_id,
        )
        return reaction_id

    async def edit(self, device_id: str, chat: str, target_id: str, text: str) -> str:
        """The device replaces the text of a message its account sent to `chat` (within
        15 minutes); returns the edit's id."""
        peer = self._peer(chat)
        me = self._linked_phone(device_id)
        return await self._edit(me, peer, target_id, text, skip=device_id)

    async def _edit(self, me: str, peer: str, target_id: str, text: str, skip: str | None) -> str:
        msg = self._own(me, peer, target_id, edit=True)
        msg.text = text
        entry = self._inbox_entry(peer, msg.id)
        if entry is not None:
            entry.update(text=text, edited=True)
        edit_id = new_message_id()
        await self._reach(
            me,
            peer,
            "edit",
            log={"id": msg.id, "text": text},
            event={"id": edit_id, "target_id": msg.id, "text": text},
            skip=skip,
        )
        return edit_id

    async def revoke(self, device_id: str, chat: str, target: Mapping[str, Any]) -> str:
        """The device deletes for everyone a message its account sent to `chat`; returns
        the revoke's id."""
        peer = self._peer(chat)
        me = self._linked_phone(device_id)
        msg = self._find_ref(me, peer, target)
        return await self._revoke(me, peer, msg.id, skip=device_id)

    async def _revoke(self, me: str, peer: str, target_id: str, skip: str | None) -> str:
        msg = self._own(me, peer, target_id, edit=False)
        msg.revoked, msg.text = True, None
        entry = self._inbox_entry(peer, msg.id)
        if entry is not None:
            kept = {k: entry[k] for k in ("id", "from", "timestamp")}
            entry.clear()
            entry.update(kept, text=None, revoked=True)
        revoke_id = new_message_id()
        await self._reach(
            me,
            peer,
            "revoke",
            log={"id": msg.id},
            event={"id": revoke_id, "target_id": msg.id},
            skip=skip,
        )
        return revoke_id

    async def mark_read(
        self, device_id: str, chat: str, ids: Sequence[str], sender: str | None = None
    ) -> None:
        """The device sends read receipts for the messages `ids` of `chat` (in a group,
        all from `sender`)."""
        peer = self._peer(chat)
        me = self._linked_phone(device_id)
        if sender is not None:
            self._peer(sender)
        await self._read(me, peer, [str(i) for i in ids], skip=device_id)

    async def _read(self, me: str, peer: str, ids: list[str], skip: str | None) -> None:
        """`me` read the messages `ids` of its chat with `peer`: `peer` sees the receipts
        (its log), and `me`'s other linked devices learn it, as WhatsApp tells the
        account's devices of a read made on another (a receipt from the account itself)."""
        for message_id in ids:
            msg = self._messages.get(message_id)
            if msg is not None and msg.author == peer and msg.peer == me:
                msg.read = True
        await self._reach(me, peer, "read", log={"ids": ids}, event=None)
        now = self.clock().isoformat()
        for device_id in self._devices_of(me):
            if device_id != skip:
                await self._deliver_own(device_id, "read", me, peer, ids=ids, timestamp=now)

    async def set_presence(self, device_id: str, chat: str, state: str) -> None:
        """The device shows `state` (typing, recording, paused) in `chat`."""
        peer = self._peer(chat)
        me = self._linked_phone(device_id)
        check_presence(state, CHAT_PRESENCES)
        await self._reach(
            me, peer, "presence", log={"state": state}, event={"state": state}, skip=device_id
        )

    async def check_numbers(self, device_id: str, phones: Sequence[str]) -> list[dict[str, Any]]:
        """Which of `phones` have a WhatsApp account, in order: [{phone, on_whatsapp, jid,
        lid, business}]. As WhatsApp's usync, it teaches the device their LID mappings."""
        self._linked_phone(device_id)
        if len(phones) > MAX_CHECK:
            raise ValidationFailed(N_("phones: at most {max} numbers per check"), max=MAX_CHECK)
        checks: list[dict[str, Any]] = []
        for phone in (normalize_phone(p) for p in phones):
            on = phone not in self._off
            if on:
                self._learned[device_id].add(phone)
            checks.append(
                {
                    "phone": phone,
                    "on_whatsapp": on,
                    "jid": identity(phone, None)["jid"] if on else None,
                    "lid": self._lid(phone) if on else None,
                    "business": on and self._profile(phone).business,
                }
            )
        return checks

    async def contact_profile(self, device_id: str, address: str) -> dict[str, Any]:
        """What the device's account sees of `address` (a phone or a LID): {address, lid,
        push_name, about, picture_url, business, blocked}. `address` is the phone when
        the device knows it (asking by number teaches the LID mapping), else the LID."""
        me = self._linked_phone(device_id)
        address = normalize_recipient(address)
        phone = self._peer(address)
        if not is_lid(address):
            self._learned[device_id].add(phone)
        profile = self._profile(phone)
        known = phone in self._learned[device_id]
        return {
            "address": phone if known else address,
            "lid": self._lid(phone),
            "push_name": self._push_name(phone),
            "about": profile.about,
            "picture_url": profile.picture and PICTURE_URL.format(id=profile.picture),
            "business": profile.business,
            "blocked": self._blocks(me, phone),
        }

    async def set_blocked(self, device_id: str, address: str, blocked: bool) -> None:
        """The device's account blocks (or unblocks) `address`, a phone or a LID; new
        messages and calls of a blocked phone no longer reach it. Idempotent."""
        me = self._linked_phone(device_id)
        phone = self._peer(address)
        if phone == me:
            raise ValidationFailed(N_("an account cannot block itself"))
        if blocked:
            self._blocked[me].add(phone)
        else:
            self._blocked[me].discard(phone)

    async def address_book(self, device_id: str) -> list[dict[str, Any]]:
        """The contacts the account's phone saved that are on WhatsApp: [{address, name,
        push_name, lid}] (the sync carries their LIDs, so the device learns them)."""
        me = self._linked_phone(device_id)
        entries: list[dict[str, Any]] = []
        for phone, name in self._books.get(me, {}).items():
            if phone in self._off:
                continue
            self._learned[device_id].add(phone)
            entries.append(
                {
                    "address": phone,
                    "name": name,
                    "push_name": self._push_name(phone),
                    "lid": self._lid(phone),
                }
            )
        return entries

    async def reject_call(self, device_id: str, call_id: str, caller: str) -> None:
        """The device rejects the call `call_id` that `caller` (a phone or a LID) made to
        its account; the caller's log shows `call_rejected`. Rejecting it again does
        nothing."""
        me = self._linked_phone(device_id)
        phone = self._peer(caller)
        call = self._calls.get(call_id)
        if call is None or (call.caller, call.callee) != (phone, me):
            raise NotFound(
                N_("no call {id} from {caller} to {phone}"),
                hint=N_("Name a call by the id and caller of its call event."),
                id=call_id[:80],
                caller=phone,
                phone=me,
            )
        if call.rejected:
            return
        call.rejected = True
        await self._reach(me, phone, "call_rejected", log={"id": call_id}, event=None)

    async def _later_acks(self, dev: _Device, message_id: str) -> None:
        await asyncio.sleep(self.deliver_delay)
        await self._push(dev, "ack", id=message_id, status="delivered")
        await asyncio.sleep(self.read_delay - self.deliver_delay)
        await self._push(dev, "ack", id=message_id, status="read")

    async def logout(self, device_id: str) -> None:
        """Unlink the device and forget its credentials. Idempotent."""
        dev = self._device(device_id)
        self._forget_codes(dev)
        link = self._links.pop(device_id, None)
        if link is None:
            return
        self._save()
        logger.info("simnet: device %s unlinked from %s", device_id, link.phone)
        await self._push(dev, "logged_out", reason="logged_out")

    async def disconnect(
        self, device_id: str, reason: str = "connection dropped by the simulated network"
    ) -> None:
        """Drop the device's connection (an admin/test helper, and what a stopping engine
        does on its way out); its reader sees a `disconnected` event."""
        dev = self._devices.get(device_id)
        if dev is None:
            return
        self._forget_codes(dev)
        dev.online, dev.drop_reason = False, reason
        await self._wake(dev)

    async def next_events(
        self,
        device_id: str,
        after: int,
        timeout: float,  # noqa: ASYNC109 - the long-poll window, part of the protocol
    ) -> list[dict[str, Any]]:
        """Events with seq > `after`, waiting up to `timeout` seconds for the first one.
        Everything up to `after` counts as processed and is forgotten."""
        dev = self._device(device_id)
        if after > dev.seq:
            after = 0  # a cursor from an earlier life of the network
        while dev.events and dev.events[0]["seq"] <= after:
            dev.events.popleft()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        async with dev.cond:
            while True:
                if not dev.online:
                    return [{"seq": after, "type": "disconnected", "reason": dev.drop_reason}]
                if dev.events:
                    return [dict(e) for e in dev.events]
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                try:
                    async with asyncio.timeout(remaining):
                        await dev.cond.wait()
                except TimeoutError:
                    pass

    # -- the phone side ----------------------------------------------------------------------
    async def scan(self, qr: str, phone: str) -> str:
        """`phone` scans `qr`: links the device showing it and returns its id."""
        phone = normalize_phone(phone)
        device_id = self._qrs.get(qr.strip())
        if device_id is None:
            raise QrNotFound()
        return await self._link(device_id, phone)

    async def enter_pair_code(self, phone: str, code: str) -> str:
        """`phone` types a pairing code: links the device that asked for it."""
        phone = normalize_phone(phone)
        found = self._codes.get(normalize_pair_code(code))
        if found is None:
            raise PairCodeNotFound()
        device_id, wanted = found
        if wanted != phone:
            raise PairCodeNotFound(
                N_("this pairing code was asked for another number"),
                hint=N_("Enter the code on the phone whose number the session asked the code for."),
            )
        return await self._link(device_id, phone)

    async def phone_send(
        self,
        phone: str,
        to: str,
        text: str | None,
        media: Mapping[str, Any] | None = None,
        extras: Mapping[str, Any] | None = None,
    ) -> str:
        """`phone` writes `text` (or sends `media` with `text` as its caption) to the linked
        number `to`, with `extras` as a device's send takes them (a quote names a message
        of their chat, whoever wrote it); every device linked to `to` receives it. Returns
        the message id."""
        phone, to = self._on_whatsapp(normalize_phone(phone)), normalize_phone(to)
        _, carried = _media(media)
        checked = check_extras(extras, text=text, has_media=media is not None)
        targets = self._devices_of(to)
        if not targets:
            raise NumberNotLinked(phone=to)
        quote = self._quote((extras or {}).get("quote"), phone, to, known=True)
        message_id = new_message_id()
        now = self.clock()
        if self._remember(self._record(message_id, phone, to, now, text, checked)).dropped:
            return message_id
        for device_id in targets:
            await self._deliver(
                device_id,
                "message",
                phone,
                id=message_id,
                text=text,
                timestamp=now.isoformat(),
                media=carried,
                **checked,
                **self._quote_for(quote, to),
            )
        return message_id

    async def phone_send_own(self, owner: str, to: str, text: str) -> str:
        """The linked number `owner` writes `text` to `to` from its own phone: `to`
        receives it, and `owner`'s linked devices see it as their account's message."""
        owner, to = normalize_phone(owner), self._on_whatsapp(normalize_phone(to))
        own_devices = self._devices_of(owner)
        if not own_devices:
            raise NumberNotLinked(phone=owner)
        message_id = new_message_id()
        now = self.clock()
        stamp = now.isoformat()
        msg = self._remember(self._record(message_id, owner, to, now, text, {}))
        for device_id in own_devices:
            await self._deliver_own(
                device_id, "message", owner, to, id=message_id, text=text, timestamp=stamp
            )
        if msg.dropped:
            return message_id
        self._inboxes[to].append(
            {"id": message_id, "from": owner, "text": text, "timestamp": stamp}
        )
        for device_id in self._devices_of(to):
            await self._deliver(
                device_id, "message", owner, id=message_id, text=text, timestamp=stamp
            )
        return message_id

    async def phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        """`phone` reacts to the message `target_id` of its chat with `to`; "" removes its
        reaction. Returns the reaction's id."""
        phone, to = normalize_phone(phone), normalize_phone(to)
        msg = self._find(phone, to, target_id)
        reaction_id = new_message_id()
        emoji = _emoji(emoji)
        await self._reach(
            phone,
            to,
            "reaction",
            log={"id": msg.id, "emoji": emoji},
            event={"id": reaction_id, "target_id": msg.id, "emoji": emoji},
        )
        return reaction_id

    async def phone_edit(self, phone: str, to: str, target_id: str, text: str) -> str:
        """`phone` edits its own message `target_id` to `to` (within 15 minutes)."""
        return await self._edit(normalize_phone(phone), normalize_phone(to), target_id, text, None)

    async def phone_revoke(self, phone: str, to: str, target_id: str) -> str:
        """`phone` deletes its own message `target_id` to `to` for everyone."""
        return await self._revoke(normalize_phone(phone), normalize_phone(to), target_id, None)

    async def phone_vote(self, phone: str, to: str, poll_id: str, options: Sequence[str]) -> None:
        """`phone` votes `options` (their texts; none withdraws its vote) on the poll
        `poll_id` of its chat with `to`. The vote carries the options' sha256 hashes."""
        phone, to = normalize_phone(phone), normalize_phone(to)
        msg = self._find(phone, to, poll_id)
        if msg.kind != "poll":
            raise ValidationFailed(N_("message {id} is not a poll"), id=msg.id)
        chosen = list(dict.fromkeys(str(o) for o in options))
        unknown = [o for o in chosen if o not in msg.poll]
        if unknown:
            raise ValidationFailed(
                N_("{option!r} is not an option of poll {id}"), option=unknown[0][:100], id=msg.id
            )
        if len(chosen) > msg.max_selections:
            raise ValidationFailed(
                N_("poll {id} takes at most {max} options"), id=msg.id, max=msg.max_selections
            )
        await self._reach(
            phone,
            to,
            "vote",
            log={"poll_id": msg.id, "options": chosen},
            event={"poll_id": msg.id, "selected_hashes": [option_hash(o) for o in chosen]},
        )

    async def phone_presence(self, phone: str, to: str, state: str) -> None:
        """`phone` shows `state` to `to`: typing, recording or paused in their chat, or
        available / unavailable."""
        phone, to = normalize_phone(phone), normalize_phone(to)
        check_presence(state)
        await self._reach(phone, to, "presence", log={"state": state}, event={"state": state})

    async def phone_read(self, owner: str, chat: str) -> list[str]:
        """The linked number `owner` opens its chat with `chat` on its phone: the messages
        `chat` sent it that were not read yet are read (their ids, oldest first; none: no
        receipt goes). `owner`'s linked devices get a `read` event {chat, chat_alt, ids,
        from_me}, as whatsmeow reports a read made on the account's phone."""
        owner, chat = normalize_phone(owner), normalize_phone(chat)
        if not self._devices_of(owner):
            raise NumberNotLinked(phone=owner)
        ids = [
            m.id
            for m in self._messages.values()
            if m.author == chat and m.peer == owner and not (m.read or m.revoked or m.dropped)
        ]
        if ids:
            await self._read(owner, chat, ids, skip=None)
        return ids

    async def phone_log(self, phone: str) -> list[dict[str, Any]]:
        """What `phone` saw besides messages, oldest first: {type, from, timestamp, ...}:
        `reaction` {id, emoji}, `edit` {id, text}, `revoke` {id}, `read` {ids},
        `presence` {state}, `vote` {poll_id, options}, `call_rejected` {id}."""
        return [dict(e) for e in self._logs.get(normalize_phone(phone), ())]

    async def phone_inbox(self, phone: str) -> list[dict[str, Any]]:
        """What `phone` received, oldest first: [{id, from, text, timestamp, media?, quote?,
        mentions?, location?, contacts?, poll?, preview?, edited?, revoked?}] (media: {kind,
        mime, filename, size, sha256}; quote: {id, from}; preview: {url, title,
        description, thumbnail (base64)})."""
        return [dict(m) for m in self._inboxes.get(normalize_phone(phone), [])]

    async def push_name(self, phone: str) -> str:
        """The name `phone` shows in WhatsApp, which its messages carry."""
        return self._push_name(normalize_phone(phone))

    async def set_push_name(self, phone: str, name: str) -> str:
        """`phone`'s user sets the name WhatsApp shows (its push name); its next messages
        carry it. Returns the name set."""
        phone, name = normalize_phone(phone), name.strip()
        if not 1 <= len(name) <= MAX_PUSH_NAME:
            raise ValidationFailed(
                N_("a push name is 1 to {max} characters"),
                hint=N_("Set the name the phone's user shows in WhatsApp."),
                max=MAX_PUSH_NAME,
            )
        self._names[phone] = name
        return name

    async def off_whatsapp(self, phone: str) -> None:
        """From now on `phone` has no WhatsApp account: checks say so, and nothing is sent
        to or from it."""
        self._off.add(normalize_phone(phone))

    async def set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
    ) -> None:
        """What `phone`'s profile shows from now on: its about text, whether it is a
        business account, whether it has a profile picture (one it had stays the same),
        and its push name when given (`set_push_name`)."""
        phone = self._on_whatsapp(normalize_phone(phone))
        if about is not None and len(about) > MAX_ABOUT:
            raise ValidationFailed(N_("an about text is at most {max} characters"), max=MAX_ABOUT)
        if push_name is not None:
            await self.set_push_name(phone, push_name)
        old = self._profile(phone).picture
        kept = (old or new_picture_id()) if picture else None
        self._profiles[phone] = _Profile(about=about, business=business, picture=kept)

    async def phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        """The linked number `owner` saves `phone` as `name` in its phone's address book,
        which its linked devices read (`address_book`)."""
        owner, phone, name = normalize_phone(owner), normalize_phone(phone), name.strip()
        if not self._devices_of(owner):
            raise NumberNotLinked(phone=owner)
        if not 1 <= len(name) <= MAX_CONTACT_NAME:
            raise ValidationFailed(
                N_("a contact's name is 1 to {max} characters"), max=MAX_CONTACT_NAME
            )
        self._books[owner][phone] = name

    async def phone_call(self, phone: str, to: str, *, video: bool = False) -> str:
        """`phone` calls the linked number `to`: every device linked to `to` gets a `call`
        event {id, video, group}, addressed like a message (none when `to` blocked
        `phone`). Returns the call's id."""
        phone, to = self._on_whatsapp(normalize_phone(phone)), normalize_phone(to)
        targets = self._devices_of(to)
        if not targets:
            raise NumberNotLinked(phone=to)
        call_id = new_call_id()
        self._calls[call_id] = _Call(caller=phone, callee=to)
        if len(self._calls) > MAX_CALLS:
            del self._calls[next(iter(self._calls))]
        if self._blocks(to, phone):
            return call_id
        now = self.clock().isoformat()
        for device_id in targets:
            await self._deliver(
                device_id, "call", phone, id=call_id, video=video, group=False, timestamp=now
            )
        return call_id

    async def lid_of(self, phone: str) -> str:
        """The LID of `phone`'s account."""
        return self._lid(normalize_phone(phone))

    async def address_by_lid(self, phone: str, *, share_phone: bool) -> str:
        """From now on `phone`'s messages reach devices addressed by its LID (returned),
        with its number beside it only when `share_phone`."""
        phone = normalize_phone(phone)
        self._by_lid[phone] = share_phone
        return self._lid(phone)

    async def pn_for_lid(self, device_id: str, lid: str) -> str | None:
        """The phone of `lid` if the device has learned it (whatsmeow's store mapping)."""
        phone = self._lid_phones.get(lid)
        return phone if phone in self._learned.get(_check_device_id(device_id), ()) else None

    # -- introspection / lifecycle -----------------------------------------------------------
    def linked_devices(self) -> dict[str, str]:
        """{device_id: phone} of every linked device."""
        return {k: v.phone for k, v in self._links.items()}

    async def aclose(self) -> None:
        """Cancel pending acks (timers)."""
        await self._tasks.close()
