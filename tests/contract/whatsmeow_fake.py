"""The other side of WhatsApp for the whatsmeow engine, offline, across processes.

`FakeWhatsApp` (in the test process) plays WhatsApp's servers and the users' phones, on a
loopback TCP port. The engine's host processes make `RemoteClient`s (name this module's
`host_client` as the runtime's client factory: `FakeWhatsApp.config()` does): real
neonize `NewClient`s whose `connect()` does not dial Go but this network, and which get
what happens through neonize's own entry points (`client.event.execute` with a serialized
protobuf and an event code, the QR callback with a C string), as Go delivers them.
Everything above that line, in the host and in the worker, is the production code.

What it models of whatsmeow, from its source:
* one message event per encrypted part of a stanza, all with one id (`phone_send_group`);
* a QR channel that is never closed on a requested disconnect: stopping an unpaired
  client does not end its connect() (neonize's `for evt := range qrChan`): only killing
  the process does;
* after a successful pairing, WhatsApp restarts the stream (515) and the client connects
  again; `fail_after_pair` makes that reconnect fail, as it can;
* a client made for a device the store no longer has crashes its process (Go's nil
  dereference in `NewClient`);
* ConnectFailure, KeepAliveTimeout without Disconnected, and the rest, pushed by a test;
* reactions, edits, deletions and poll votes as message events (an edit and a deletion
  unwrapped as whatsmeow's UnwrapRaw leaves them, with `Info.Edit` set); a message the
  account's own phone sent as an event with `IsFromMe` and the recipient as the chat;
* polls and their votes as whatsmeow makes them: the poll carries a random message secret
  that every device keeps (whatsmeow's msg-secret store), a vote is its PollVoteMessage
  (sha256 of each option) sealed with AES-256-GCM under a key derived from that secret
  (msgsecret.go: HKDF-SHA256 over poll id, poll author, voter and "Poll Vote"; the poll id
  and voter as additional data); `decrypt_poll_vote` opens it the same way;
* a contact's presence and chat states reach only a device that marked itself online
  (SendPresence available) and subscribed to that contact (SubscribePresence);
* a link preview as WhatsApp's apps send it: an ExtendedTextMessage with matchedText,
  title, description and the JPEG thumbnail inline;
* a chat the account reads on its phone as whatsmeow reports it to the linked devices: a
  Receipt from the account itself (IsFromMe, the chat in Chat) naming the messages read,
  of type read, or read-self when the account's read receipts are off (receipt.go).

* a number without WhatsApp, profiles (about, business, picture, a picture hidden from
  others) and the block list as whatsmeow's usync and IQs answer them (`FakeGo`); a
  blocked contact's messages, calls and presence never reach the account that blocked
  it, and what the account sends it is taken but never delivered;
* a call as whatsmeow's CallOffer of the `<offer>` stanza (a `video` child for a video
  call), its rejection reaching the caller;
* the address book as whatsmeow's contact store holds it: names from the phone's
  app-state sync (after pairing, on connecting, on every change), push names from the
  messages it received.

neonize's calls that would reach Go's client map (send, upload, build_reaction,
build_poll_vote_creation, decrypt_poll_vote, mark_read, presence) are answered by this
network instead; the pure-Python builders around them (replies, edits, revokes, stickers)
are neonize's own. For contacts, calls and the LID map, neonize's own wrappers run: only
the Go functions under them are this network's (`FakeGo`).

`LoopbackSocks` is a SOCKS5 proxy on 127.0.0.1 that records which host whatsmeow asked
for and answers "host unreachable": it lets the real neonize dial, offline, without one
packet leaving the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import ctypes.util
import hashlib
import hmac
import itertools
import json
import os
import secrets
import socket
import socketserver
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neonize.client import NewClient
from neonize.events import (
    EVENT_TO_INT,
    CallOfferEv,
    ChatPresenceEv,
    ConnectedEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    PresenceEv,
    ReceiptEv,
)
from neonize.proto.Neonize_pb2 import (
    JID,
    BasicCallMeta,
    Blocklist,
    CallRemoteMeta,
    Contact,
    ContactInfo,
    ContactsGetAllContactsReturnFunction,
    ContactsGetContactReturnFunction,
    Device,
    GetBlocklistReturnFunction,
    GetJIDFromStoreReturnFunction,
    GetProfilePictureReturnFunction,
    GetUserInfoReturnFunction,
    GetUserInfoSingleReturnFunction,
    IsOnWhatsAppResponse,
    IsOnWhatsAppReturnFunction,
    JIDArray,
    MessageInfo,
    MessageSource,
    Node,
    NodeAttrs,
    PairStatus,
    ProfilePictureInfo,
    Receipt,
    SendResponse,
    UploadResponse,
    UserInfo,
    VerifiedName,
)
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    ContactMessage,
    ContactsArrayMessage,
    ContextInfo,
    DocumentMessage,
    ExtendedTextMessage,
    ImageMessage,
    LocationMessage,
    Message,
    MessageContextInfo,
    PollCreationMessage,
    PollEncValue,
    PollUpdateMessage,
    PollVoteMessage,
    ProtocolMessage,
    ReactionMessage,
    SenderKeyDistributionMessage,
    StickerMessage,
    VideoMessage,
)
from neonize.proto.waVnameCert.WAWebProtobufsVnameCert_pb2 import VerifiedNameCertificate

from zapgate.domain.content import ContactCard, LinkPreview, Location, Poll
from zapgate.engines.backends import WhatsmeowConfig
from zapgate.simnet.ids import default_push_name

ROOT = Path(__file__).resolve().parents[2]
ENV_ADDRESS = "FAKE_WHATSAPP_ADDRESS"
FACTORY = "tests.contract.whatsmeow_fake:host_client"

# The media field of a Message for each kind, and its proto class.
MEDIA_FIELDS: dict[str, tuple[str, type]] = {
    "image": ("imageMessage", ImageMessage),
    "document": ("documentMessage", DocumentMessage),
    "audio": ("audioMessage", AudioMessage),
    "video": ("videoMessage", VideoMessage),
    "sticker": ("stickerMessage", StickerMessage),
}
# whatsmeow's `edit` attribute of a stanza (types.EditAttribute): an edit, a deletion.
EDIT_MESSAGE, EDIT_SENDER_REVOKE = "1", "7"
# whatsmeow's errors for a profile picture that is not set or hidden (errors.go).
PICTURE_NOT_SET = "that user or group does not have a profile picture"
PICTURE_HIDDEN = "the user has hidden their profile picture from you"
# A chat state shown by a phone, as whatsmeow's ChatPresence (State, Media) numbers it.
CHAT_STATES = {"typing": (1, 1), "recording": (1, 2), "paused": (2, 1)}


class ScanRefused(Exception):
    """What the fake network answers to a QR or code it does not know (like simnet: 404)."""

    status = 404


def jid(phone: str, device: int = 0, server: str = "s.whatsapp.net") -> JID:
    return JID(
        User=phone.lstrip("+"),
        Device=device,
        Server=server,
        RawAgent=0,
        Integrator=0,
        IsEmpty=False,
    )


def source(chat: JID, sender: JID, *, from_me: bool = False, sender_alt: JID | None = None) -> Any:
    """A MessageSource with every field Go fills in (they are proto2 `required`)."""
    empty = JID(User="", Device=0, Server="", RawAgent=0, Integrator=0, IsEmpty=True)
    return MessageSource(
        Chat=chat,
        Sender=sender,
        IsFromMe=from_me,
        IsGroup=chat.Server == "g.us",
        SenderAlt=sender_alt or empty,
        RecipientAlt=empty,
        BroadcastListOwner=empty,
    )


def message_event(
    message_id: str,
    src: Any,
    message: Message,
    ts: int | None = None,
    edit: str = "",
    push_name: str = "",
) -> Any:
    """whatsmeow's event of a message; `push_name` is the sender's name as the stanza's
    `notify` carries it (the account's own name on a message of its own)."""
    return MessageEv(
        Info=MessageInfo(
            MessageSource=src,
            ID=message_id,
            ServerID=0,
            Type="text" if message.conversation else "media",
            Pushname=push_name,
            Timestamp=int(time.time()) if ts is None else ts,
            Category="",
            Multicast=False,
            MediaType="",
            Edit=edit,
        ),
        Message=message,
        IsEphemeral=False,
        IsViewOnce=False,
        IsViewOnceV2=False,
        IsViewOnceV2Extension=False,
        IsDocumentWithCaption=False,
        IsLottieSticker=False,
        IsEdit=edit == EDIT_MESSAGE,
        UnavailableRequestID="",
        RetryCount=0,
    )


def receipt_event(chat: JID, ids: list[str], kind: int) -> Any:
    return ReceiptEv(
        MessageSource=source(chat, chat),
        MessageIDs=ids,
        Timestamp=int(time.time()),
        Type=kind,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _jid_str(j: JID) -> str:
    return f"{j.User}:{j.Device}@{j.Server}" if j.Device else f"{j.User}@{j.Server}"


def _hkdf_sha256(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 without salt (whatsmeow's hkdfutil.SHA256(secret, nil, info, length))."""
    prk = hmac.new(b"\x00" * 32, secret, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


def _gcm(key: bytes, iv: bytes, data: bytes, aad: bytes, *, encrypt: bool) -> bytes:
    """AES-256-GCM as Go's cipher.AEAD: Seal gives ciphertext + 16-byte tag, Open takes
    them and fails on a wrong key or data (here through OpenSSL's libcrypto)."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
    lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
    lib.EVP_aes_256_gcm.restype = ctypes.c_void_p
    ctx = ctypes.c_void_p(lib.EVP_CIPHER_CTX_new())
    init, update, final = (
        (lib.EVP_EncryptInit_ex, lib.EVP_EncryptUpdate, lib.EVP_EncryptFinal_ex)
        if encrypt
        else (lib.EVP_DecryptInit_ex, lib.EVP_DecryptUpdate, lib.EVP_DecryptFinal_ex)
    )
    body, tag = (data, b"") if encrypt else (data[:-16], data[-16:])
    out = ctypes.create_string_buffer(len(body) + 16)
    size = ctypes.c_int(0)
    try:
        init(ctx, ctypes.c_void_p(lib.EVP_aes_256_gcm()), None, None, None)
        lib.EVP_CIPHER_CTX_ctrl(ctx, 0x9, len(iv), None)  # EVP_CTRL_GCM_SET_IVLEN
        init(ctx, None, None, key, iv)
        update(ctx, None, ctypes.byref(size), aad, len(aad))
        update(ctx, out, ctypes.byref(size), body, len(body))
        produced = size.value
        if encrypt:
            final(ctx, ctypes.byref(out, produced), ctypes.byref(size))
            tag_buf = ctypes.create_string_buffer(16)
            lib.EVP_CIPHER_CTX_ctrl(ctx, 0x10, 16, tag_buf)  # EVP_CTRL_GCM_GET_TAG
            return out.raw[:produced] + tag_buf.raw
        lib.EVP_CIPHER_CTX_ctrl(ctx, 0x11, 16, ctypes.create_string_buffer(tag, 16))
        if final(ctx, ctypes.byref(out, produced), ctypes.byref(size)) != 1:
            raise ValueError("cipher: message authentication failed")
        return out.raw[:produced]
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)


def poll_vote_key(secret: bytes, poll_id: str, poll_author: str, voter: str) -> tuple[bytes, bytes]:
    """whatsmeow's generateMsgSecretKey for a poll vote: the key and the additional data.
    `poll_author` and `voter` are non-AD JID strings (`digits@s.whatsapp.net`)."""
    info = (poll_id + poll_author + voter + "Poll Vote").encode()
    return _hkdf_sha256(secret, info), f"{poll_id}\x00{voter}".encode()


def vcard_of(card: ContactCard) -> str:
    """The vCard a phone's WhatsApp writes for a shared contact."""
    digits = (card.phone or "").lstrip("+")
    return (
        f"BEGIN:VCARD\nVERSION:3.0\nFN:{card.name}\n"
        f"TEL;type=CELL;type=VOICE;waid={digits}:+{digits}\nEND:VCARD"
    )


def inbox_entry(message: Message) -> dict[str, Any]:
    """How a phone shows a message (test_engine_messages.py's inbox entries)."""
    entry: dict[str, Any] = {
        "text": message.conversation or message.extendedTextMessage.text or None
    }
    context = message.extendedTextMessage.contextInfo
    for kind, (name, _) in MEDIA_FIELDS.items():
        if message.HasField(name):
            sub = getattr(message, name)
            context = sub.contextInfo
            entry["text"] = getattr(sub, "caption", "") or None
            entry["media"] = {
                "kind": "voice" if kind == "audio" and sub.PTT else kind,
                "mime": sub.mimetype,
                "size": sub.fileLength,
                "sha256": bytes(sub.fileSHA256).hex(),
                "filename": sub.fileName if kind == "document" else None,
            }
    if message.HasField("locationMessage"):
        loc = message.locationMessage
        context = loc.contextInfo
        entry["location"] = {
            "latitude": loc.degreesLatitude,
            "longitude": loc.degreesLongitude,
            "name": loc.name or None,
            "address": loc.address or None,
        }
    cards = list(message.contactsArrayMessage.contacts)
    if message.HasField("contactMessage"):
        cards = [message.contactMessage]
        context = message.contactMessage.contextInfo
    if cards:
        entry["contacts"] = [
            {"name": c.displayName, "phone": _waid(c.vcard), "vcard": c.vcard} for c in cards
        ]
    if message.HasField("pollCreationMessage"):
        poll = message.pollCreationMessage
        entry["poll"] = {
            "question": poll.name,
            "options": [o.optionName for o in poll.options],
            "max_selections": poll.selectableOptionsCount,
        }
    ext = message.extendedTextMessage
    if ext.matchedText:
        thumbnail = bytes(ext.JPEGThumbnail)
        entry["preview"] = {
            "url": ext.matchedText,
            "title": ext.title or None,
            "description": ext.description or None,
            "thumbnail": _b64(thumbnail) if thumbnail else None,
        }
    if context.stanzaID:
        entry["quote"] = {"id": context.stanzaID}
    if context.mentionedJID:
        entry["mentions"] = ["+" + m.split("@")[0] for m in context.mentionedJID]
    return entry


def _waid(vcard: str) -> str | None:
    for part in vcard.replace("\n", ";").replace(":", ";").split(";"):
        if part.lower().startswith("waid="):
            return "+" + part[5:]
    return None


# -- the auth-state store, as whatsmeow writes it ---------------------------------------------
def _pg(store: str, *queries: tuple[str, tuple[Any, ...]]) -> list[Any]:
    import asyncpg  # type: ignore[import-untyped]

    async def run() -> list[Any]:
        conn = await asyncpg.connect(store)
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS whatsmeow_device (jid TEXT PRIMARY KEY)")
            rows: list[Any] = []
            for query, args in queries:
                rows = list(await conn.fetch(query, *args))
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def store_device(store: str, device_jid: JID) -> None:
    """What whatsmeow writes to the auth-state store when a device is paired (before it
    reports the pairing)."""
    value = _jid_str(device_jid)
    if store.startswith("postgres"):
        _pg(store, ("INSERT INTO whatsmeow_device VALUES ($1) ON CONFLICT DO NOTHING", (value,)))
        return
    with contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("CREATE TABLE IF NOT EXISTS whatsmeow_device (jid TEXT PRIMARY KEY)")
        db.execute("DELETE FROM whatsmeow_device")
        db.execute("INSERT INTO whatsmeow_device VALUES (?)", (value,))


def stored_devices(store: str) -> list[str]:
    if store.startswith("postgres"):
        return [str(r["jid"]) for r in _pg(store, ("SELECT jid FROM whatsmeow_device", ()))]
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
            return [str(r[0]) for r in db.execute("SELECT jid FROM whatsmeow_device")]
    except sqlite3.Error:
        return []


def delete_device(store: str, user: str | None = None) -> None:
    """What whatsmeow does to its store on a logout (its own, or WhatsApp's)."""
    if store.startswith("postgres"):
        _pg(store, ("DELETE FROM whatsmeow_device WHERE jid LIKE $1", (f"{user or ''}%",)))
        return
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(store)) as db, db:
        db.execute("DELETE FROM whatsmeow_device")


def _device_of(store: str, user: str | None) -> str | None:
    for value in stored_devices(store):
        if user is None or value.split("@")[0].split(":")[0] == user:
            return value
    return None


# -- the network side (test process) ------------------------------------------------------------
@dataclass(eq=False)
class Link:
    """One client's connection to the network."""

    uuid: str
    store: str
    conn: socket.socket
    pid: int = 0  # the host process the client runs in
    phone: str | None = None
    paired: bool = False
    stopped: bool = False
    current_qr: str | None = None
    # What this device's store learned: LID user -> phone (whatsmeow's LID map).
    learned: dict[str, str] = field(default_factory=dict)
    # whatsmeow's contact store of this device's auth store (FakeWhatsApp.contact_store).
    contacts: dict[str, dict[str, str]] = field(default_factory=dict)
    # Whether it marked itself online, and whose presence it subscribed to.
    available: bool = False
    subscribed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)

    def send(self, obj: dict[str, Any]) -> None:
        if self.stopped:
            return
        data = (json.dumps(obj) + "\n").encode()
        with self.lock, contextlib.suppress(OSError):
            self.conn.sendall(data)

    def push(self, event: Any) -> None:
        """Deliver `event` as Go does: its serialized bytes and its event code. whatsmeow
        keeps the push name a message carries in its contact store (PutPushName)."""
        if isinstance(event, MessageEv) and event.Info.Pushname:
            sender = event.Info.MessageSource.Sender
            row = self.contacts.setdefault(f"{sender.User}@{sender.Server}", {})
            row["push_name"] = event.Info.Pushname
        self.send({"ev": EVENT_TO_INT[type(event)], "data": _b64(event.SerializeToString())})

    def show_qr(self, code: str) -> None:
        self.current_qr = code
        self.send({"qr": code})

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        timer = threading.Timer(delay, fn)
        timer.daemon = True
        timer.start()


@dataclass
class FakeWhatsApp:
    """Servers + phones. `ttls` maps a client id to its QR TTLs (first, next)."""

    qr_first_ttl: float = 30.0
    qr_ttl: float = 30.0
    deliver_delay: float = 0.01
    read_delay: float = 0.03
    # Make the reconnect WhatsApp asks for right after a pairing (stream error 515) fail.
    fail_after_pair: bool = False
    # Seconds a media download takes; a Stop that never completes (a wedged Go core).
    download_delay: float = 0.0
    ignore_stop: bool = False
    ttls: dict[str, tuple[float, float]] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    inboxes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pair_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    lids: dict[str, str] = field(default_factory=dict)  # every account: LID user -> phone
    # Phones whose messages arrive addressed by LID: True when SenderAlt carries the phone.
    lid_addressed: dict[str, bool] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    connects: int = 0
    # Uploaded media by direct path: what WhatsApp's media servers hold.
    blobs: dict[str, bytes] = field(default_factory=dict)
    # What each phone saw besides messages (EngineHarness.phone_log), oldest first.
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Every message that crossed the network: id -> (author phone, text).
    messages: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # whatsmeow's msg-secret store of each auth store (it outlives a connection):
    # store -> message id -> (secret, the message's author as a JID string).
    secrets: dict[str, dict[str, tuple[bytes, str]]] = field(default_factory=dict)
    # The names phones set (their push names); a phone without one shows a default.
    names: dict[str, str] = field(default_factory=dict)
    # Polls as the phones' WhatsApp keeps them: id -> (message secret, author phone).
    polls: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # Messages a linked number has not read yet: (reader, author) -> ids, oldest first.
    unread: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Numbers without a WhatsApp account.
    off: set[str] = field(default_factory=set)
    # What each account's profile shows: phone -> about, business, picture.
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Whom each account blocked (WhatsApp's servers keep the list): phone -> phones.
    blocked: dict[str, set[str]] = field(default_factory=dict)
    # Each account's address book on its phone: phone -> contact phone -> name.
    address_books: dict[str, dict[str, str]] = field(default_factory=dict)
    # whatsmeow's contact store of each auth store (it outlives a connection):
    # store -> `user@server` -> first_name, full_name, push_name.
    contact_store: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # Calls that rang: call id -> (caller, callee).
    calls: dict[str, tuple[str, str]] = field(default_factory=dict)
    _server: socketserver.ThreadingTCPServer | None = None

    # -- serving -------------------------------------------------------------------------------
    def serve(self) -> FakeWhatsApp:
        net = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                net._handle(self.connection, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def address(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def config(self, **overrides: Any) -> WhatsmeowConfig:
        """A whatsmeow configuration whose hosts talk to this network."""
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        base: dict[str, Any] = {
            "reconnect_base": 0.01,
            "client_factory": FACTORY,
            "host_env": {ENV_ADDRESS: self.address, "PYTHONPATH": path},
        }
        return WhatsmeowConfig(**{**base, **overrides})

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self.lock:
            for link in self.links.values():
                with contextlib.suppress(OSError):
                    link.conn.close()

    def _handle(self, conn: socket.socket, rfile: Any) -> None:
        line = rfile.readline()
        if not line:
            return
        req = json.loads(line)
        if req.get("op") == "hello":
            self._connection(conn, rfile, req)
            return
        try:
            result = self._call(req)
            answer = {"ok": True, **result}
        except Exception as exc:
            answer = {"ok": False, "error": str(exc) or type(exc).__name__}
        with contextlib.suppress(OSError):
            conn.sendall((json.dumps(answer) + "\n").encode())

    def _connection(self, conn: socket.socket, rfile: Any, hello: dict[str, Any]) -> None:
        uuid, store = str(hello["uuid"]), str(hello["store"])
        link = Link(uuid, store, conn, pid=int(hello.get("pid", 0)))
        with self.lock:
            link.contacts = self.contact_store.setdefault(store, {})
        with self.lock:
            self.connects += 1
            self.links[uuid] = link
        device = _device_of(store, hello.get("user"))
        reader = threading.Thread(target=self._read_until_closed, args=(link, rfile), daemon=True)
        reader.start()
        if device is not None:
            link.paired = True
            link.phone = "+" + device.split("@")[0].split(":")[0]
            self._sync_contacts(link)
            link.push(ConnectedEv(status=True))
        else:
            first, ttl = self.ttls.get(uuid, (self.qr_first_ttl, self.qr_ttl))
            codes = itertools.count(1)
            wait = first
            while not link.paired and not link.stopped and reader.is_alive():
                link.show_qr(f"2@fake{next(codes)}{secrets.token_hex(6)},{uuid}")
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and not link.paired and not link.stopped:
                    link.wake.wait(min(0.2, max(deadline - time.monotonic(), 0)))
                    link.wake.clear()
                wait = ttl
        reader.join()
        with self.lock:
            if self.links.get(uuid) is link:
                del self.links[uuid]

    def _read_until_closed(self, link: Link, rfile: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            while rfile.readline():
                pass
        link.stopped = True
        link.wake.set()

    # -- what clients ask ----------------------------------------------------------------------
    def _call(self, req: dict[str, Any]) -> dict[str, Any]:
        op, uuid = req["op"], str(req.get("uuid", ""))
        with self.lock:
            link = self.links.get(uuid)
        if op == "stop":
            if link is None or self.ignore_stop:
                return {}
            if link.paired:
                with contextlib.suppress(OSError):
                    link.conn.shutdown(socket.SHUT_RDWR)
            else:
                # whatsmeow closes the websocket but never the QR channel: the client's
                # connect() goes on waiting, and nothing more reaches it.
                link.stopped = True
                link.wake.set()
            return {}
        if op == "has_device":
            return {"found": _device_of(str(req["store"]), req.get("user")) is not None}
        if op == "upload":
            return self.store_blob(_unb64(req["data"]))
        if op == "download":
            time.sleep(self.download_delay)
            with self.lock:
                return {"data": _b64(self.blobs[req["path"]])}
        assert link is not None, f"no connection for {uuid}"
        if op == "send":
            message = Message.FromString(_unb64(req["message"]))
            return {"id": self.deliver(link, str(req["to"]), message)}
        if op == "pair_phone":
            code = secrets.token_hex(4).upper()
            with self.lock:
                self.pair_codes[code] = (uuid, "+" + str(req["phone"]))
            return {"code": f"{code[:4]}-{code[4:]}"}
        if op == "logout":
            delete_device(link.store, (link.phone or "").lstrip("+") or None)
            return {}
        if op == "me":
            return {"user": (link.phone or "").lstrip("+") if link.paired else None}
        if op == "msg_secret":
            with self.lock:
                found = self.secrets.get(link.store, {}).get(str(req["id"]))
            return {"secret": _b64(found[0]), "author": found[1]} if found else {"secret": None}
        if op == "receipt":
            if req["type"] == "read":
                chat = self._phone_of(str(req["chat"]))
                self._log(chat, link, type="read", ids=req["ids"])
                with self.lock:
                    pending = self.unread.get((link.phone or "", chat), [])
                    pending[:] = [i for i in pending if i not in req["ids"]]
            return {}
        if op == "chatstate":
            state = {(1, 1): "typing", (1, 2): "recording", (2, 1): "paused", (2, 2): "paused"}
            shown = state[(int(req["state"]), int(req["media"]))]
            self._log(self._phone_of(str(req["chat"])), link, type="presence", state=shown)
            return {}
        if op == "presence":
            link.available = req["presence"] == "available"
            return {}
        if op == "subscribe":
            link.subscribed.add(self._phone_of(str(req["jid"])))
            return {}
        if op == "go":
            args = [_unb64(a) for a in req["args"]]
            return {"data": _b64(self._go(link, str(req["fn"]), args))}
        raise ValueError(f"unknown op {op}")

    def _phone_of(self, address: str) -> str:
        """The phone of `user@server` (a LID through the network's LID map)."""
        user, _, server = address.partition("@")
        with self.lock:
            return self.lids.get(user, "") if server == "lid" else "+" + user

    def _log(self, phone: str, actor: Link, **entry: Any) -> None:
        with self.lock:
            self.logs.setdefault(phone, []).append({**entry, "from": actor.phone})

    def store_blob(self, data: bytes) -> dict[str, Any]:
        path = "/v/t62/" + secrets.token_hex(12)
        with self.lock:
            self.blobs[path] = data
        digest = hashlib.sha256(data).digest()
        return {
            "url": "https://mmg.whatsapp.net" + path,
            "path": path,
            "key": _b64(secrets.token_bytes(32)),
            "sha": _b64(digest),
            "length": len(data),
        }

    def by_phone(self, phone: str) -> Link | None:
        """The live connection of the device linked to `phone`."""
        with self.lock:
            for link in self.links.values():
                if link.phone == phone and link.paired and not link.stopped:
                    return link
        return None

    def _pair(self, link: Link, phone: str) -> None:
        device = jid(phone, device=7)
        store_device(link.store, device)  # whatsmeow saves the device, then reports it
        link.phone = phone
        link.paired = True
        link.current_qr = None
        self._sync_contacts(link)
        link.wake.set()
        link.push(
            PairStatusEv(ID=device, Status=PairStatus.SUCCESS, BusinessName="", Platform="android")
        )
        # WhatsApp ends the stream (515, an expected disconnect: no event) and whatsmeow
        # connects again with the new device.
        if not self.fail_after_pair:
            link.push(ConnectedEv(status=True))

    # -- LIDs ------------------------------------------------------------------------------------
    def lid_of(self, phone: str) -> str:
        """The stable LID (`<digits>@lid`) of `phone`'s account."""
        user = str(100_000_000_000_000 + int(hashlib.sha256(phone.encode()).hexdigest()[:12], 16))
        with self.lock:
            self.lids[user] = phone
        return f"{user}@lid"

    def address_by_lid(self, phone: str, *, share_phone: bool) -> None:
        """From now on `phone`'s messages arrive addressed by its LID, with its number in
        SenderAlt only when `share_phone`."""
        self.lid_of(phone)
        with self.lock:
            self.lid_addressed[phone] = share_phone

    def teach(self, device_phone: str, lid: str, phone: str) -> None:
        """Put `lid` -> `phone` in the store of the device linked to `device_phone`."""
        link = self.by_phone(device_phone)
        assert link is not None, f"no linked device for {device_phone}"
        link.learned[lid.removesuffix("@lid")] = phone

    def _source(self, sender: str, to: Link) -> Any:
        """How a 1:1 message of `sender` is addressed to device `to`, as whatsmeow reports
        it; what it carries of the LID <-> phone mapping goes into that device's store."""
        lid = jid(self.lid_of(sender).removesuffix("@lid"), server="lid")
        with self.lock:
            share = self.lid_addressed.get(sender)
        if share is None:  # addressed by phone number, its LID alongside
            to.learned[lid.User] = sender
            return source(jid(sender), jid(sender), sender_alt=lid)
        if share:
            to.learned[lid.User] = sender
            return source(lid, lid, sender_alt=jid(sender))
        return source(lid, lid)

    # -- the phone side ----------------------------------------------------------------------
    def push_name(self, phone: str) -> str:
        """The name `phone` set in WhatsApp, which its messages carry."""
        with self.lock:
            return self.names.get(phone) or default_push_name(phone)

    def set_push_name(self, phone: str, name: str) -> None:
        with self.lock:
            self.names[phone] = name

    def scan(self, qr: str, phone: str) -> None:
        with self.lock:
            found = [lk for lk in self.links.values() if lk.current_qr == qr]
        if not found or found[0].stopped:
            raise ScanRefused(f"unknown or expired QR {qr[:12]}...")
        self._pair(found[0], phone)

    def enter_pair_code(self, phone: str, code: str) -> None:
        with self.lock:
            entry = self.pair_codes.pop(code, None)
        if entry is None or entry[1] != phone:
            raise ScanRefused("unknown pairing code")
        with self.lock:
            link = self.links[entry[0]]
        self._pair(link, phone)

    def push(self, phone: str, event: Any) -> None:
        """Deliver a whatsmeow event to the device linked to `phone`."""
        link = self.by_phone(phone)
        assert link is not None, f"no linked device for {phone}"
        link.push(event)

    def _blocks(self, owner: str, phone: str) -> bool:
        """Whether the account `owner` blocked `phone`."""
        with self.lock:
            return phone in self.blocked.get(owner, ())

    def _reach(self, sender: str, to: str) -> Link | None:
        """The live device of the linked number `to` that a 1:1 message, call or presence
        of `sender` reaches: none when `to` blocked `sender` (WhatsApp's servers do not
        deliver what a blocked contact sends)."""
        return None if self._blocks(to, sender) else self.by_phone(to)

    def _unread(self, reader: str, author: str, message_id: str) -> None:
        if self._blocks(reader, author):
            return
        with self.lock:
            self.unread.setdefault((reader, author), []).append(message_id)

    def phone_send(self, phone: str, to: str, text: str) -> str:
        link = self._reach(phone, to)
        message_id = "3EB0" + secrets.token_hex(8).upper()
        self._unread(to, phone, message_id)
        if link is not None:
            src, name = self._source(phone, link), self.push_name(phone)
            link.push(message_event(message_id, src, Message(conversation=text), push_name=name))
        return message_id

    def phone_send_group(self, phone: str, group: str, members: list[str], text: str) -> str:
        """`phone` writes `text` in a group, as whatsmeow delivers a sender's first group
        message: for each member, one event per encrypted part of the stanza, all with the
        same id — first the `pkmsg` part holding only the sender key distribution, then the
        `skmsg` part with the content (message.go; whatsmeow#184)."""
        message_id = "3EB0" + secrets.token_hex(8).upper()
        chat = jid(group, server="g.us")
        skdm = Message(
            senderKeyDistributionMessage=SenderKeyDistributionMessage(
                groupID=f"{group}@g.us", axolotlSenderKeyDistributionMessage=b"\x33" * 32
            )
        )
        for member in members:
            link = self.by_phone(member)
            if link is not None:
                src, name = source(chat, jid(phone)), self.push_name(phone)
                link.push(message_event(message_id, src, skdm, push_name=name))
                link.push(
                    message_event(message_id, src, Message(conversation=text), push_name=name)
                )
        return message_id

    def phone_send_media(
        self,
        phone: str,
        to: str,
        *,
        kind: str,
        data: bytes,
        mime: str,
        caption: str | None = None,
        filename: str | None = None,
    ) -> str:
        """A phone sends media to the linked number `to`: uploaded, then announced."""
        upload = self.store_blob(data)
        name, cls = MEDIA_FIELDS[kind]
        fields: dict[str, Any] = {
            "URL": upload["url"],
            "directPath": upload["path"],
            "mediaKey": _unb64(upload["key"]),
            "fileSHA256": _unb64(upload["sha"]),
            "fileEncSHA256": _unb64(upload["sha"]),
            "fileLength": upload["length"],
            "mimetype": mime,
        }
        if kind != "audio" and caption:
            fields["caption"] = caption
        if kind == "document" and filename:
            fields["fileName"] = filename
        message = Message(**{name: cls(**fields)})
        message_id = "3EB0" + secrets.token_hex(8).upper()
        self._unread(to, phone, message_id)
        link = self._reach(phone, to)
        if link is not None:
            src = self._source(phone, link)
            link.push(message_event(message_id, src, message, push_name=self.push_name(phone)))
        return message_id

    def deliver(self, sender: Link, to: str, message: Message) -> str:
        """A linked device sent `message` to `to` (`user@server`): the phone shows it (its
        inbox) or acts on it (its log: a reaction, an edit, a deletion), then receipts
        come back."""
        phone = self._phone_of(to)
        if not to.endswith("@lid"):
            # whatsmeow learns the LID of a number it sends to (usync).
            sender.learned[self.lid_of(phone).removesuffix("@lid")] = phone
        message_id = "3EB0" + secrets.token_hex(8).upper()
        if self._blocks(phone, sender.phone or ""):
            return message_id  # WhatsApp takes it; the phone that blocked us never gets it
        secret = bytes(message.messageContextInfo.messageSecret)
        if secret and sender.phone is not None:
            # whatsmeow keeps the secret of what it sends; the phone's WhatsApp too.
            author = f"{sender.phone.lstrip('+')}@s.whatsapp.net"
            with self.lock:
                self.secrets.setdefault(sender.store, {})[message_id] = (secret, author)
                self.polls[message_id] = (secret, sender.phone)
        action = self._action_of(message)
        with self.lock:
            if action is not None:
                self.logs.setdefault(phone, []).append({**action, "from": sender.phone})
            else:
                entry = {"id": message_id, **inbox_entry(message), "from": sender.phone}
                self.inboxes.setdefault(phone, []).append(entry)
                self.messages[message_id] = (sender.phone or "", entry["text"])
        recipient = self.by_phone(phone)
        if recipient is not None and sender.phone is not None:
            src, name = self._source(sender.phone, recipient), self.push_name(sender.phone)
            recipient.push(message_event(message_id, src, message, push_name=name))

        def receipt(kind: int) -> Callable[[], None]:
            return lambda: sender.push(receipt_event(jid(phone), [message_id], kind))

        sender.later(self.deliver_delay, receipt(Receipt.DELIVERED))
        sender.later(self.read_delay, receipt(Receipt.READ))
        return message_id

    @staticmethod
    def _action_of(message: Message) -> dict[str, Any] | None:
        """What a phone's log shows of a reaction, an edit or a deletion; None for a
        message it shows in the chat."""
        if message.HasField("reactionMessage"):
            reaction = message.reactionMessage
            return {"type": "reaction", "id": reaction.key.ID, "emoji": reaction.text}
        inner = message.editedMessage.message if message.HasField("editedMessage") else message
        if not inner.HasField("protocolMessage"):
            return None
        proto = inner.protocolMessage
        if proto.type == ProtocolMessage.MESSAGE_EDIT:
            edited = proto.editedMessage
            new_text = edited.conversation or edited.extendedTextMessage.text
            return {"type": "edit", "id": proto.key.ID, "text": new_text}
        if proto.type == ProtocolMessage.REVOKE:
            return {"type": "revoke", "id": proto.key.ID}
        return None

    # -- the phone side of rich messages (test_engine_messages.py) ---------------------------
    def _push_from(self, phone: str, to: str, message: Message, edit: str = "") -> str:
        """`phone` sends `message` to the linked number `to`: whatsmeow's event of it."""
        message_id = "3EB0" + secrets.token_hex(8).upper()
        link = self._reach(phone, to)
        text = message.conversation or message.extendedTextMessage.text or None
        with self.lock:
            self.messages[message_id] = (phone, text)
        if link is not None:
            secret = bytes(message.messageContextInfo.messageSecret)
            if secret:
                # whatsmeow stores the secret of a message it receives, too.
                author = f"{phone.lstrip('+')}@s.whatsapp.net"
                with self.lock:
                    self.secrets.setdefault(link.store, {})[message_id] = (secret, author)
            src, name = self._source(phone, link), self.push_name(phone)
            link.push(message_event(message_id, src, message, edit=edit, push_name=name))
        return message_id

    def phone_send_rich(
        self,
        phone: str,
        to: str,
        *,
        text: str | None = None,
        quote_id: str | None = None,
        mentions: tuple[str, ...] = (),
        location: Location | None = None,
        contacts: tuple[ContactCard, ...] = (),
        poll: Poll | None = None,
        preview: LinkPreview | None = None,
    ) -> str:
        if location is not None:
            message = Message(
                locationMessage=LocationMessage(
                    degreesLatitude=location.latitude,
                    degreesLongitude=location.longitude,
                    name=location.name,
                    address=location.address,
                )
            )
        elif contacts:
            cards = [ContactMessage(displayName=c.name, vcard=vcard_of(c)) for c in contacts]
            message = (
                Message(contactMessage=cards[0])
                if len(cards) == 1
                else Message(
                    contactsArrayMessage=ContactsArrayMessage(
                        displayName=f"{len(cards)} contacts", contacts=cards
                    )
                )
            )
        elif poll is not None:
            secret = secrets.token_bytes(32)
            options = [PollCreationMessage.Option(optionName=o) for o in poll.options]
            message = Message(
                pollCreationMessage=PollCreationMessage(
                    name=poll.question,
                    options=options,
                    selectableOptionsCount=poll.max_selections,
                ),
                messageContextInfo=MessageContextInfo(messageSecret=secret),
            )
        else:
            context = ContextInfo(
                mentionedJID=[f"{m.lstrip('+')}@s.whatsapp.net" for m in mentions]
            )
            if quote_id is not None:
                with self.lock:
                    author, quoted_text = self.messages.get(quote_id, (to, None))
                context.stanzaID = quote_id
                context.participant = f"{author.lstrip('+')}@s.whatsapp.net"
                context.quotedMessage.CopyFrom(Message(conversation=quoted_text or ""))
            part = ExtendedTextMessage(text=text or "", contextInfo=context)
            if preview is not None:
                part.MergeFrom(
                    ExtendedTextMessage(
                        matchedText=preview.url,
                        title=preview.title or "",
                        description=preview.description or "",
                        previewType=ExtendedTextMessage.PreviewType.NONE,
                        JPEGThumbnail=preview.thumbnail or b"",
                    )
                )
            message = Message(extendedTextMessage=part)
        message_id = self._push_from(phone, to, message)
        self._unread(to, phone, message_id)
        if poll is not None:
            with self.lock:
                self.polls[message_id] = (bytes(message.messageContextInfo.messageSecret), phone)
        return message_id

    def phone_send_from_own_phone(self, owner: str, to: str, text: str) -> str:
        """The account `owner` writes from its phone: its linked devices get the message
        as whatsmeow reports a device-sent one (IsFromMe, the recipient as the chat, the
        phone's device 0 as the sender); `to` gets it as any message."""
        message_id = "3EB0" + secrets.token_hex(8).upper()
        with self.lock:
            self.inboxes.setdefault(to, []).append({"id": message_id, "text": text, "from": owner})
            self.messages[message_id] = (owner, text)
        link = self.by_phone(owner)
        if link is not None:
            src = source(jid(to), jid(owner), from_me=True)
            message = Message(conversation=text)
            link.push(message_event(message_id, src, message, push_name=self.push_name(owner)))
        return message_id

    def _key(self, phone: str, to: str, target_id: str) -> MessageKey:
        """The MessageKey `phone`'s WhatsApp writes for a message of its chat with `to`."""
        with self.lock:
            author = self.messages.get(target_id, (to, None))[0]
        return MessageKey(
            remoteJID=f"{to.lstrip('+')}@s.whatsapp.net", fromMe=author == phone, ID=target_id
        )

    def phone_react(self, phone: str, to: str, target_id: str, emoji: str) -> str:
        reaction = ReactionMessage(
            key=self._key(phone, to, target_id),
            text=emoji,
            senderTimestampMS=int(time.time() * 1000),
        )
        return self._push_from(phone, to, Message(reactionMessage=reaction))

    def phone_edit(self, phone: str, to: str, target_id: str, text: str) -> None:
        """As whatsmeow dispatches an edit: the protocol message unwrapped from its
        `editedMessage`, `Info.Edit` "1"."""
        proto = ProtocolMessage(
            key=self._key(phone, to, target_id),
            type=ProtocolMessage.MESSAGE_EDIT,
            editedMessage=Message(conversation=text),
            timestampMS=int(time.time() * 1000),
        )
        self._push_from(phone, to, Message(protocolMessage=proto), edit=EDIT_MESSAGE)

    def phone_revoke(self, phone: str, to: str, target_id: str) -> None:
        proto = ProtocolMessage(key=self._key(phone, to, target_id), type=ProtocolMessage.REVOKE)
        self._push_from(phone, to, Message(protocolMessage=proto), edit=EDIT_SENDER_REVOKE)

    def phone_vote(self, phone: str, to: str, poll_id: str, options: list[str]) -> None:
        """`phone` votes on the poll `poll_id` as whatsmeow's BuildPollVote does."""
        with self.lock:
            secret, author = self.polls[poll_id]
        voter = f"{phone.lstrip('+')}@s.whatsapp.net"
        key, aad = poll_vote_key(secret, poll_id, f"{author.lstrip('+')}@s.whatsapp.net", voter)
        vote = PollVoteMessage(
            selectedOptions=[hashlib.sha256(o.encode()).digest() for o in options]
        )
        iv = secrets.token_bytes(12)
        update = PollUpdateMessage(
            pollCreationMessageKey=self._key(phone, to, poll_id),
            vote=PollEncValue(
                encPayload=_gcm(key, iv, vote.SerializeToString(), aad, encrypt=True), encIV=iv
            ),
            senderTimestampMS=int(time.time() * 1000),
        )
        self._push_from(phone, to, Message(pollUpdateMessage=update))

    def phone_presence(self, phone: str, to: str, state: str) -> None:
        """What reaches the linked number `to` when `phone` shows `state`: nothing unless
        that device is online and subscribed to `phone`."""
        link = self._reach(phone, to)
        if link is None or not link.available or phone not in link.subscribed:
            return
        if state in CHAT_STATES:
            chat_state, media = CHAT_STATES[state]
            src = self._source(phone, link)
            link.push(ChatPresenceEv(MessageSource=src, State=chat_state, Media=media))
        else:
            gone = state == "unavailable"
            link.push(
                PresenceEv(
                    From=jid(phone), Unavailable=gone, LastSeen=int(time.time()) if gone else 0
                )
            )

    def phone_read_chat(self, owner: str, chat: str, *, receipts_off: bool = False) -> list[str]:
        """The linked number `owner` opens its chat with `chat` on its phone: what `chat`
        sent it unread is read (the ids, oldest first). `chat` sees the read receipts
        unless `owner`'s are off; the linked devices get whatsmeow's Receipt from the
        account itself, `read-self` when its read receipts are off."""
        with self.lock:
            ids = self.unread.pop((owner, chat), [])
        if not ids:
            return []
        if not receipts_off:
            with self.lock:
                self.logs.setdefault(chat, []).append({"type": "read", "ids": ids, "from": owner})
        link = self.by_phone(owner)
        if link is not None:
            link.push(
                ReceiptEv(
                    MessageSource=source(jid(chat), jid(owner), from_me=True),
                    MessageIDs=ids,
                    Timestamp=int(time.time()),
                    Type=Receipt.READ_SELF if receipts_off else Receipt.READ,
                )
            )
        return ids

    def phone_log(self, phone: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.logs.get(phone, []))

    def log_out_from_phone(self, phone: str) -> None:
        link = self.by_phone(phone)
        assert link is not None, f"no linked device for {phone}"
        delete_device(link.store, phone.lstrip("+"))  # whatsmeow deletes it on LoggedOut
        link.push(LoggedOutEv(OnConnect=False, Reason=2))  # LOGGED_OUT

    # -- contacts and calls: the phone side (test_engine_contacts.py) -------------------------
    def off_whatsapp(self, phone: str) -> None:
        with self.lock:
            self.off.add(phone)

    def set_profile(
        self,
        phone: str,
        *,
        push_name: str | None = None,
        about: str | None = None,
        business: bool = False,
        picture: bool = False,
        picture_hidden: bool = False,
    ) -> None:
        """What `phone`'s profile shows; `picture_hidden`: a picture its privacy settings
        hide from everyone else. The push name is the one its messages carry: whatsmeow
        learns it from them, not from the profile."""
        if push_name is not None:
            self.set_push_name(phone, push_name)
        with self.lock:
            self.profiles[phone] = {
                "about": about,
                "business": business,
                "picture": secrets.token_hex(5) if picture or picture_hidden else None,
                "hidden": picture_hidden,
            }

    def phone_call(self, phone: str, to: str, *, video: bool = False) -> str:
        """`phone` calls the linked number `to`: the device gets whatsmeow's CallOffer of
        the `<call><offer>` stanza, addressed like `phone`'s messages (`_source`): the
        creator's phone JID with `caller_lid`, or its LID with `caller_pn` when the phone
        is shared. A blocked caller's call never reaches the device."""
        call_id = secrets.token_hex(16).upper()
        with self.lock:
            self.calls[call_id] = (phone, to)
        link = self._reach(phone, to)
        if link is None:
            return call_id
        lid = jid(self.lid_of(phone).removesuffix("@lid"), server="lid")
        with self.lock:
            share = self.lid_addressed.get(phone)
        empty = JID(User="", Device=0, Server="", RawAgent=0, Integrator=0, IsEmpty=True)
        if share is None:
            creator, alt, alt_attr = jid(phone), lid, "caller_lid"
        else:
            creator, alt, alt_attr = lid, (jid(phone) if share else empty), "caller_pn"
        attrs = [
            NodeAttrs(name="call-id", text=call_id),
            NodeAttrs(name="call-creator", jid=creator),
        ]
        if not alt.IsEmpty:
            attrs.append(NodeAttrs(name=alt_attr, jid=alt))
        media = [
            Node(Tag="audio", Attrs=[NodeAttrs(name="enc", text="opus"), rate], Nil=True)
            for rate in (NodeAttrs(name="rate", text="16000"), NodeAttrs(name="rate", text="8000"))
        ]
        if video:
            media.append(Node(Tag="video", Attrs=[NodeAttrs(name="enc", text="vp8")], Nil=True))
        nodes = [
            *media,
            Node(Tag="net", Attrs=[NodeAttrs(name="medium", text="3")], Nil=True),
            Node(Tag="encopt", Attrs=[NodeAttrs(name="keygen", text="2")], Nil=True),
        ]
        device = JID()
        device.CopyFrom(creator)
        device.Device = 0
        link.push(
            CallOfferEv(
                basicCallMeta=BasicCallMeta(
                    **{"from": device},
                    timestamp=int(time.time()),
                    callCreator=creator,
                    callCreatorAlt=alt,
                    callID=call_id,
                ),
                callRemoteMeta=CallRemoteMeta(remotePlatform="android", remoteVersion="2.25.1"),
                data=Node(Tag="offer", Attrs=attrs, Nodes=nodes),
            )
        )
        return call_id

    def phone_save_contact(self, owner: str, phone: str, name: str) -> None:
        """The linked number `owner` saves `phone` as `name` on its phone: an app-state
        patch (contact action: full and first name) that its linked devices apply to
        whatsmeow's contact store (appstate.go, PutContactName)."""
        with self.lock:
            self.address_books.setdefault(owner, {})[phone] = name
        link = self.by_phone(owner)
        if link is not None:
            self._sync_contacts(link)

    def _sync_contacts(self, link: Link) -> None:
        """whatsmeow's app-state sync of the account's contacts into the device's store
        (after pairing, on connecting and on every change)."""
        with self.lock:
            book = dict(self.address_books.get(link.phone or "", {}))
            for phone, name in book.items():
                row = link.contacts.setdefault(f"{phone.lstrip('+')}@s.whatsapp.net", {})
                row.update(first_name=name.split()[0] if name.split() else "", full_name=name)

    # -- contacts and calls: what whatsmeow asks the servers (FakeGo's functions) -------------
    def _verified_name(self, phone: str) -> VerifiedName | None:
        """A business account's verified name, as usync's `business` node gives it."""
        with self.lock:
            profile = self.profiles.get(phone, {})
        if not profile.get("business"):
            return None
        details = VerifiedNameCertificate.Details(
            serial=int(phone.lstrip("+")) % 10**9,
            issuer="smb:wa",
            verifiedName=self.push_name(phone),
        )
        certificate = VerifiedNameCertificate(
            details=details.SerializeToString(), signature=b"\x00" * 64
        )
        return VerifiedName(Certificate=certificate, Details=details)

    def _learn_lid(self, link: Link, phone: str) -> JID:
        """The LID of `phone`'s account; a usync answer carries it and whatsmeow stores
        the mapping."""
        lid = self.lid_of(phone).removesuffix("@lid")
        link.learned[lid] = phone
        return jid(lid, server="lid")

    def _blocklist(self, link: Link) -> Blocklist:
        """The account's block list as WhatsApp answers it: LIDs (whatsmeow blocks by LID)."""
        with self.lock:
            phones = sorted(self.blocked.get(link.phone or "", ()))
        lids = [jid(self.lid_of(p).removesuffix("@lid"), server="lid") for p in phones]
        digest = hashlib.sha256(" ".join(phones).encode()).hexdigest()[:12]
        return Blocklist(DHash=digest, JIDs=lids)

    def _contact_info(self, row: dict[str, str] | None) -> ContactInfo:
        row = row or {}
        return ContactInfo(
            Found=bool(row),
            FirstName=row.get("first_name", ""),
            FullName=row.get("full_name", ""),
            PushName=row.get("push_name", ""),
            BusinessName="",
            RedactedPhone="",
        )

    def _go(self, link: Link, fn: str, args: list[bytes]) -> bytes:
        """One of goneonize's functions (FakeGo) for the device `link`: whatsmeow's call,
        WhatsApp's answer, the serialized protobuf neonize reads."""
        if fn == "IsOnWhatsApp":
            answers = []
            for number in args[0].decode().split(" "):
                phone = "+" + number.lstrip("+")
                if phone in self.off:
                    answers.append(IsOnWhatsAppResponse(Query=number, JID=jid(phone), IsIn=False))
                    continue
                lid = self._learn_lid(link, phone)  # usync in LID addressing mode
                answer = IsOnWhatsAppResponse(Query=number, JID=lid, IsIn=True)
                verified = self._verified_name(phone)
                if verified is not None:
                    answer.VerifiedName.CopyFrom(verified)
                answers.append(answer)
            return IsOnWhatsAppReturnFunction(IsOnWhatsAppResponse=answers).SerializeToString()
        if fn == "GetUserInfo":
            users = []
            for asked in JIDArray.FromString(args[0]).JIDS:
                phone = self._phone_of(f"{asked.User}@{asked.Server}")
                if not phone or phone in self.off:
                    continue
                self._learn_lid(link, phone)
                with self.lock:
                    profile = dict(self.profiles.get(phone, {}))
                info = UserInfo(
                    Status=profile.get("about") or "",
                    PictureID="" if profile.get("hidden") else profile.get("picture") or "",
                    Devices=[jid(phone)],
                )
                verified = self._verified_name(phone)
                if verified is not None:
                    info.VerifiedName.CopyFrom(verified)
                users.append(GetUserInfoSingleReturnFunction(JID=asked, UserInfo=info))
            return GetUserInfoReturnFunction(UsersInfo=users).SerializeToString()
        if fn == "GetProfilePicture":
            asked = JID.FromString(args[0])
            with self.lock:
                profile = dict(
                    self.profiles.get(self._phone_of(f"{asked.User}@{asked.Server}"), {})
                )
            picture = profile.get("picture")
            if not picture:
                return GetProfilePictureReturnFunction(Error=PICTURE_NOT_SET).SerializeToString()
            if profile.get("hidden"):
                return GetProfilePictureReturnFunction(Error=PICTURE_HIDDEN).SerializeToString()
            path = f"/v/t61.24694-24/{picture}_n.jpg"
            info = ProfilePictureInfo(
                URL=f"https://pps.whatsapp.net{path}?ccb=11-4&oh=01_{picture}&oe=6A000000",
                ID=picture,
                Type="image",
                DirectPath=path,
                Hash=b"",
            )
            return GetProfilePictureReturnFunction(Picture=info).SerializeToString()
        if fn == "GetBlocklist":
            return GetBlocklistReturnFunction(Blocklist=self._blocklist(link)).SerializeToString()
        if fn == "UpdateBlocklist":
            asked = JID.FromString(args[0])
            phone = self._phone_of(f"{asked.User}@{asked.Server}")
            if not phone or phone in self.off:
                error = f"no LID found for {asked.User}@{asked.Server} from server"
                return GetBlocklistReturnFunction(Error=error).SerializeToString()
            self._learn_lid(link, phone)  # whatsmeow asks usync for the LID it blocks by
            with self.lock:
                mine = self.blocked.setdefault(link.phone or "", set())
                if args[1].decode() == "block":
                    mine.add(phone)
                else:
                    mine.discard(phone)
            return GetBlocklistReturnFunction(Blocklist=self._blocklist(link)).SerializeToString()
        if fn == "RejectCall":
            creator = JID.FromString(args[0])
            call_id = args[1].decode()
            caller = self._phone_of(f"{creator.User}@{creator.Server}")
            with self.lock:
                if self.calls.get(call_id, ("", ""))[0] == caller:
                    entry = {"type": "call_rejected", "id": call_id, "from": link.phone}
                    self.logs.setdefault(caller, []).append(entry)
            return b""
        if fn in ("GetLIDFromPN", "GetPNFromLID"):
            # whatsmeow's LID map of this device's store; an empty JID when it has no entry.
            asked = JID.FromString(args[0])
            if fn == "GetPNFromLID":
                phone = link.learned.get(str(asked.User))
                found = jid(phone) if phone else None
            else:
                user = next((u for u, p in link.learned.items() if p == "+" + asked.User), None)
                found = jid(user, server="lid") if user else None
            empty = JID(User="", Device=0, Server="", RawAgent=0, Integrator=0, IsEmpty=True)
            return GetJIDFromStoreReturnFunction(
                Jid=empty if found is None else found
            ).SerializeToString()
        if fn == "GetAllContacts":
            with self.lock:
                rows = {k: dict(v) for k, v in link.contacts.items()}
            contacts = [
                Contact(
                    JID=jid(key.partition("@")[0], server=key.partition("@")[2]),
                    Info=self._contact_info(row),
                )
                for key, row in rows.items()
            ]
            return ContactsGetAllContactsReturnFunction(Contact=contacts).SerializeToString()
        if fn == "GetContact":
            asked = JID.FromString(args[0])
            with self.lock:
                row = link.contacts.get(f"{asked.User}@{asked.Server}")
                info = self._contact_info(dict(row) if row else None)
            return ContactsGetContactReturnFunction(ContactInfo=info).SerializeToString()
        raise ValueError(f"unknown Go function {fn}")


# -- the client side (a host process) -----------------------------------------------------------
def _ask(req: dict[str, Any]) -> dict[str, Any]:
    host, _, port = os.environ[ENV_ADDRESS].rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall((json.dumps(req) + "\n").encode())
        answer = json.loads(conn.makefile("rb").readline())
    if not answer.pop("ok"):
        raise RuntimeError(answer["error"])
    return dict(answer)


def host_client(*, store: str, uuid: str, jid: Any, new_device: bool) -> RemoteClient:
    """The client factory of a host process on the fake network."""
    if (
        jid is not None
        and not _ask({"op": "has_device", "store": store, "user": jid.User})["found"]
    ):
        # neonize hands whatsmeow's nil device to NewClient, and Go dies (item 7).
        sys.stderr.write(
            "panic: runtime error: invalid memory address or nil pointer dereference\n"
        )
        sys.stderr.flush()
        os._exit(2)
    client = RemoteClient(store, uuid=uuid, jid=jid, new_device=new_device)
    client.uuid = uuid.encode()
    return client


class FakeGo:
    """goneonize's exported functions that this network plays, called by neonize's own
    Python wrappers (`is_on_whatsapp`, `get_user_info`, `get_profile_picture`,
    `get_blocklist`, `update_blocklist`, `reject_call`, `get_lid_from_pn`,
    `get_pn_from_lid`, the contact store's `get_all_contacts` and `get_contact`): the
    arguments as neonize passes them (the
    session's key, serialized protobufs, C strings), the answer as Go returns it (a
    serialized `...ReturnFunction`, or an error string). Any other Go function is not
    modelled and says so, rather than reaching a Go core that has no such client."""

    FUNCTIONS = frozenset(
        {
            "IsOnWhatsApp",
            "GetUserInfo",
            "GetProfilePicture",
            "GetBlocklist",
            "UpdateBlocklist",
            "RejectCall",
            "GetAllContacts",
            "GetContact",
            "GetLIDFromPN",
            "GetPNFromLID",
        }
    )

    def __getattr__(self, name: str) -> Callable[..., bytes]:
        if name not in self.FUNCTIONS:
            raise AttributeError(f"the fake WhatsApp does not model Go's {name}")

        def call(uuid: bytes, *args: Any) -> bytes:
            wire = [
                _b64(a) if isinstance(a, bytes) else _b64(bytes(a.value))
                for a in args
                if not isinstance(a, int)
            ]
            req = {"op": "go", "fn": name, "uuid": uuid.decode(), "args": wire}
            return _unb64(str(_ask(req)["data"]))

        return call


class RemoteClient(NewClient):  # type: ignore[misc]
    """A neonize client whose Go core is the fake network."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_finalizer.detach()  # no Go session ever exists for it
        go = FakeGo()
        self._NewClient__client = go
        self.contact._ContactStore__client = go

    def _execute(self, code: int, data: bytes) -> None:
        buf = ctypes.create_string_buffer(data, len(data) or 1)
        self.event.execute(0, ctypes.addressof(buf), len(data), code)

    def connect(self, proxy_settings: Any = None) -> None:
        host, _, port = os.environ[ENV_ADDRESS].rpartition(":")
        user = self.jid.User if self.jid is not None else None
        with socket.create_connection((host, int(port))) as conn:
            hello = {
                "op": "hello",
                "uuid": self.uuid.decode(),
                "store": self.name,
                "user": user,
                "pid": os.getpid(),
            }
            conn.sendall((json.dumps(hello) + "\n").encode())
            for line in conn.makefile("rb"):
                item = json.loads(line)
                if "qr" in item:
                    buf = ctypes.create_string_buffer(str(item["qr"]).encode())
                    self._NewClient__onQr(0, ctypes.addressof(buf))
                else:
                    self._execute(int(item["ev"]), _unb64(item["data"]))

    def stop(self) -> None:
        _ask({"op": "stop", "uuid": self.uuid.decode()})

    def logout(self) -> None:
        _ask({"op": "logout", "uuid": self.uuid.decode()})

    def get_me(self) -> Device:
        user = _ask({"op": "me", "uuid": self.uuid.decode()})["user"]
        if not user:
            return Device()
        return Device(JID=jid(user, 7), Platform="android", PushName="fake", Initialized=True)

    def PairPhone(self, phone: str, show_push_notification: bool, **_: Any) -> str:
        return str(_ask({"op": "pair_phone", "uuid": self.uuid.decode(), "phone": phone})["code"])

    def send_message(self, to: JID, message: str | Message, **_: Any) -> SendResponse:
        if isinstance(message, str):
            message = Message(conversation=message)
        req = {
            "op": "send",
            "uuid": self.uuid.decode(),
            "to": f"{to.User}@{to.Server}",
            "message": _b64(message.SerializeToString()),
        }
        return SendResponse(ID=_ask(req)["id"], Timestamp=int(time.time()))

    # neonize's send_image/send_document build their message with `upload` (the Go call
    # this replaces); download_any is how whatsmeow fetches and decrypts inbound media.
    def upload(self, binary: bytes, media_type: Any = None) -> UploadResponse:
        up = _ask({"op": "upload", "data": _b64(bytes(binary))})
        return UploadResponse(
            url=up["url"],
            DirectPath=up["path"],
            Handle="",
            MediaKey=_unb64(up["key"]),
            FileEncSHA256=_unb64(up["sha"]),
            FileSHA256=_unb64(up["sha"]),
            FileLength=up["length"],
        )

    # -- whatsmeow's builders and calls that neonize hands to Go's client map ------------------
    def build_poll_vote_creation(
        self, name: str, options: list[str], selectable_count: Any, quoted: Any = None
    ) -> Message:
        """whatsmeow's BuildPollCreation: a random 32-byte message secret rides along."""
        count = int(selectable_count.value)
        return Message(
            pollCreationMessage=PollCreationMessage(
                name=name,
                options=[PollCreationMessage.Option(optionName=o) for o in options],
                selectableOptionsCount=count if 0 <= count <= len(options) else 0,
            ),
            messageContextInfo=MessageContextInfo(messageSecret=secrets.token_bytes(32)),
        )

    def _key(self, chat: JID, sender: JID, message_id: str) -> MessageKey:
        """whatsmeow's BuildMessageKey."""
        own = self.get_me().JID.User
        key = MessageKey(fromMe=True, ID=message_id, remoteJID=f"{chat.User}@{chat.Server}")
        if sender.User and sender.User != own:
            key.fromMe = False
            if chat.Server not in ("s.whatsapp.net", "lid"):
                key.participant = f"{sender.User}@{sender.Server}"
        return key

    def build_reaction(self, chat: JID, sender: JID, message_id: str, reaction: str) -> Message:
        return Message(
            reactionMessage=ReactionMessage(
                key=self._key(chat, sender, message_id),
                text=reaction,
                senderTimestampMS=int(time.time() * 1000),
            )
        )

    def decrypt_poll_vote(self, message: Any) -> PollVoteMessage:
        """whatsmeow's DecryptPollVote: the poll's secret from this device's store, the key
        derived for (poll, its author, the voter), AES-GCM opened."""
        update = message.Message.pollUpdateMessage
        poll_id = update.pollCreationMessageKey.ID
        stored = _ask({"op": "msg_secret", "uuid": self.uuid.decode(), "id": poll_id})
        if not stored["secret"]:
            raise RuntimeError("failed to decrypt poll vote: original message secret key not found")
        voter = message.Info.MessageSource.Sender
        key, aad = poll_vote_key(
            _unb64(stored["secret"]), poll_id, stored["author"], f"{voter.User}@{voter.Server}"
        )
        vote = update.vote
        return PollVoteMessage.FromString(
            _gcm(key, bytes(vote.encIV), bytes(vote.encPayload), aad, encrypt=False)
        )

    def mark_read(
        self, *message_ids: str, chat: JID, sender: JID, receipt: Any, timestamp: int | None = None
    ) -> None:
        req = {
            "op": "receipt",
            "uuid": self.uuid.decode(),
            "chat": f"{chat.User}@{chat.Server}",
            "ids": list(message_ids),
            "type": receipt.value.decode(),
        }
        _ask(req)

    def send_chat_presence(self, jid: JID, state: Any, media: Any) -> None:
        # neonize's enums count from 0, whatsmeow's proto ones from 1.
        req = {
            "op": "chatstate",
            "uuid": self.uuid.decode(),
            "chat": f"{jid.User}@{jid.Server}",
            "state": int(state.value) + 1,
            "media": int(media.value) + 1,
        }
        _ask(req)

    def send_presence(self, presence: Any) -> None:
        _ask({"op": "presence", "uuid": self.uuid.decode(), "presence": presence.value.decode()})

    def subscribe_presence(self, jid: JID) -> None:
        _ask({"op": "subscribe", "uuid": self.uuid.decode(), "jid": f"{jid.User}@{jid.Server}"})

    def download_any(self, message: Message, path: str | None = None) -> bytes:
        for name, _ in MEDIA_FIELDS.values():
            if message.HasField(name):
                return _unb64(
                    _ask({"op": "download", "path": getattr(message, name).directPath})["data"]
                )
        raise ValueError("no media in this message")


class LoopbackSocks:
    """A SOCKS5 server on 127.0.0.1 that refuses every CONNECT with "host unreachable",
    remembering the host:port it was asked for."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> LoopbackSocks:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, n = await reader.readexactly(2)
            await reader.readexactly(n)
            writer.write(b"\x05\x00")  # no authentication
            _, _, _, atyp = await reader.readexactly(4)
            if atyp == 3:
                (length,) = await reader.readexactly(1)
                host = (await reader.readexactly(length)).decode()
            else:
                raw = await reader.readexactly(4 if atyp == 1 else 16)
                host = raw.hex()
            port = int.from_bytes(await reader.readexactly(2), "big")
            self.targets.append(f"{host}:{port}")
            writer.write(b"\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00")  # host unreachable
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
