"""The other side of WhatsApp for the whatsmeow engine, offline.

`FakeWhatsApp` plays WhatsApp's servers and the users' phones. Its clients are real neonize
`NewClient`s whose `connect()` does not dial: like the Go core, it blocks on the session's
thread and delivers what happens through neonize's own entry points, i.e.
`client.event.execute(uuid, address, size, code)` with a serialized protobuf (what Go
calls for every event) and the client's QR callback with a C string (what Go calls for
every code). Everything the engine does above that line is the production code.

`LoopbackSocks` is a SOCKS5 proxy on 127.0.0.1 that records which host whatsmeow asked
for and answers "host unreachable": it lets the real neonize dial, offline, without one
packet leaving the machine.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import itertools
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neonize.client import NewClient
from neonize.events import (
    EVENT_TO_INT,
    ConnectedEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    ReceiptEv,
)
from neonize.proto.Neonize_pb2 import (
    JID,
    Device,
    MessageInfo,
    MessageSource,
    PairStatus,
    Receipt,
    SendResponse,
    UploadResponse,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    DocumentMessage,
    ImageMessage,
    Message,
    SenderKeyDistributionMessage,
    VideoMessage,
)

# The media field of a Message for each kind, and its proto class.
MEDIA_FIELDS: dict[str, tuple[str, type]] = {
    "image": ("imageMessage", ImageMessage),
    "document": ("documentMessage", DocumentMessage),
    "audio": ("audioMessage", AudioMessage),
    "video": ("videoMessage", VideoMessage),
}


class ScanRefused(Exception):
    """What the fake network answers to a QR or code it does not know (like simnet: 404)."""

    status = 404


def jid(phone: str, device: int = 0) -> JID:
    return JID(
        User=phone.lstrip("+"),
        Device=device,
        Server="s.whatsapp.net",
        RawAgent=0,
        Integrator=0,
        IsEmpty=False,
    )


def _device(device_jid: JID) -> Device:
    return Device(
        JID=device_jid, Platform="android", BussinessName="", PushName="fake", Initialized=True
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


def message_event(message_id: str, src: Any, message: Message, ts: int | None = None) -> Any:
    return MessageEv(
        Info=MessageInfo(
            MessageSource=src,
            ID=message_id,
            ServerID=0,
            Type="text" if message.conversation else "media",
            Pushname="",
            Timestamp=int(time.time()) if ts is None else ts,
            Category="",
            Multicast=False,
            MediaType="",
            Edit="",
        ),
        Message=message,
        IsEphemeral=False,
        IsViewOnce=False,
        IsViewOnceV2=False,
        IsViewOnceV2Extension=False,
        IsDocumentWithCaption=False,
        IsLottieSticker=False,
        IsEdit=False,
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


def execute(client: NewClient, event: Any) -> None:
    """Deliver `event` the way Go does: a pointer to its serialized bytes and its code."""
    data = event.SerializeToString()
    buf = ctypes.create_string_buffer(data, len(data) or 1)
    client.event.execute(0, ctypes.addressof(buf), len(data), EVENT_TO_INT[type(event)])


def show_qr(client: NewClient, code: str) -> None:
    """Deliver a QR code the way Go does: a NUL-terminated C string."""
    buf = ctypes.create_string_buffer(code.encode())
    client._NewClient__onQr(0, ctypes.addressof(buf))


def store_device(store: str, device_jid: JID) -> None:
    """What whatsmeow writes to the auth-state store when a device is paired."""
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE IF NOT EXISTS whatsmeow_device (jid TEXT PRIMARY KEY)")
        db.execute("DELETE FROM whatsmeow_device")
        db.execute(
            "INSERT INTO whatsmeow_device VALUES (?)",
            (f"{device_jid.User}:{device_jid.Device}@{device_jid.Server}",),
        )


def stored_device(store: str) -> str | None:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
            row = db.execute("SELECT jid FROM whatsmeow_device LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


@dataclass
class _Link:
    client: FakeClient
    phone: str | None = None


@dataclass
class FakeWhatsApp:
    """Servers + phones. Timings are the QR TTLs the engine was given."""

    qr_first_ttl: float = 30.0
    qr_ttl: float = 30.0
    deliver_delay: float = 0.01
    read_delay: float = 0.03
    links: dict[str, _Link] = field(default_factory=dict)
    inboxes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pair_codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    connects: int = 0
    # Uploaded media by direct path: what WhatsApp's media servers hold.
    blobs: dict[str, bytes] = field(default_factory=dict)

    def store_blob(self, data: bytes) -> UploadResponse:
        path = "/v/t62/" + secrets.token_hex(12)
        with self.lock:
            self.blobs[path] = data
        digest = hashlib.sha256(data).digest()
        return UploadResponse(
            url="https://mmg.whatsapp.net" + path,
            DirectPath=path,
            Handle="",
            MediaKey=secrets.token_bytes(32),
            FileEncSHA256=digest,
            FileSHA256=digest,
            FileLength=len(data),
        )

    def factory(
        self,
        *,
        store: str,
        uuid: str,
        jid: Any,
        new_device: bool,
        qr_first_ttl: float | None = None,
        qr_ttl: float | None = None,
    ) -> FakeClient:
        client = FakeClient(store, uuid=uuid, jid=jid, new_device=new_device)
        client.uuid = uuid.encode()
        client.network = self
        client.qr_first_ttl = self.qr_first_ttl if qr_first_ttl is None else qr_first_ttl
        client.qr_ttl = self.qr_ttl if qr_ttl is None else qr_ttl
        return client

    def _by_phone(self, phone: str) -> FakeClient | None:
        with self.lock:
            for link in self.links.values():
                if link.phone == phone and link.client.running:
                    return link.client
        return None

    def _pair(self, client: FakeClient, phone: str) -> None:
        device = jid(phone, device=7)
        store_device(client.name, device)
        with self.lock:
            self.links[client.uuid.decode()].phone = phone
        client.push(
            PairStatusEv(ID=device, Status=PairStatus.SUCCESS, BusinessName="", Platform="android")
        )
        client.push(_device(device))
        client.push(ConnectedEv(status=True))

    # -- the phone side ----------------------------------------------------------------------
    def scan(self, qr: str, phone: str) -> None:
        with self.lock:
            found = [lk.client for lk in self.links.values() if lk.client.current_qr == qr]
        if not found or not found[0].running:
            raise ScanRefused(f"unknown or expired QR {qr[:12]}...")
        found[0].current_qr = None
        self._pair(found[0], phone)

    def enter_pair_code(self, phone: str, code: str) -> None:
        with self.lock:
            entry = self.pair_codes.pop(code, None)
        if entry is None or entry[1] != phone:
            raise ScanRefused("unknown pairing code")
        with self.lock:
            client = self.links[entry[0]].client
        self._pair(client, phone)

    def phone_send(self, phone: str, to: str, text: str) -> str:
        client = self._by_phone(to)
        message_id = "3EB0" + secrets.token_hex(8).upper()
        if client is not None:
            client.push(
                message_event(
                    message_id, source(jid(phone), jid(phone)), Message(conversation=text)
                )
            )
        return message_id

    def phone_send_group(self, phone: str, group: str, members: list[str], text: str) -> str:
        """`phone` writes `text` in a group, as whatsmeow delivers a sender's first group
        message: for each member, one event per encrypted part of the stanza, all with the
        same id — first the `pkmsg` part holding only the sender key distribution, then the
        `skmsg` part with the content (message.go; whatsmeow#184)."""
        message_id = "3EB0" + secrets.token_hex(8).upper()
        chat = JID(User=group, Device=0, Server="g.us", RawAgent=0, Integrator=0, IsEmpty=False)
        skdm = Message(
            senderKeyDistributionMessage=SenderKeyDistributionMessage(
                groupID=f"{group}@g.us", axolotlSenderKeyDistributionMessage=b"\x33" * 32
            )
        )
        for member in members:
            client = self._by_phone(member)
            if client is not None:
                src = source(chat, jid(phone))
                client.push(message_event(message_id, src, skdm))
                client.push(message_event(message_id, src, Message(conversation=text)))
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
            "URL": upload.url,
            "directPath": upload.DirectPath,
            "mediaKey": upload.MediaKey,
            "fileSHA256": upload.FileSHA256,
            "fileEncSHA256": upload.FileEncSHA256,
            "fileLength": upload.FileLength,
            "mimetype": mime,
        }
        if kind != "audio" and caption:
            fields["caption"] = caption
        if kind == "document" and filename:
            fields["fileName"] = filename
        message = Message(**{name: cls(**fields)})
        message_id = "3EB0" + secrets.token_hex(8).upper()
        client = self._by_phone(to)
        if client is not None:
            client.push(message_event(message_id, source(jid(phone), jid(phone)), message))
        return message_id

    def deliver(self, sender: FakeClient, to: str, message: Message) -> str:
        """A linked device sent `message` to `to`: inbox it, then send receipts back."""
        message_id = "3EB0" + secrets.token_hex(8).upper()
        entry: dict[str, Any] = {"id": message_id, "text": message.conversation or None}
        for kind, (name, _) in MEDIA_FIELDS.items():
            if message.HasField(name):
                sub = getattr(message, name)
                entry["text"] = getattr(sub, "caption", "") or None
                entry["media"] = {
                    "kind": kind,
                    "mime": sub.mimetype,
                    "size": sub.fileLength,
                    "sha256": bytes(sub.fileSHA256).hex(),
                    "filename": sub.fileName if kind == "document" else None,
                }
        with self.lock:
            sender_phone = self.links[sender.uuid.decode()].phone
            self.inboxes.setdefault(to, []).append({**entry, "from": sender_phone})
        recipient = self._by_phone(to)
        if recipient is not None and sender_phone is not None:
            src = source(jid(sender_phone), jid(sender_phone))
            recipient.push(message_event(message_id, src, message))

        def receipt(kind: int) -> Callable[[], None]:
            def push() -> None:
                sender.push(receipt_event(jid(to), [message_id], kind))

            return push

        sender.later(self.deliver_delay, receipt(Receipt.DELIVERED))
        sender.later(self.read_delay, receipt(Receipt.READ))
        return message_id

    def log_out_from_phone(self, phone: str) -> None:
        client = self._by_phone(phone)
        assert client is not None, f"no linked device for {phone}"
        client.push(LoggedOutEv(OnConnect=False, Reason=2))  # LOGGED_OUT


class FakeClient(NewClient):  # type: ignore[misc]
    """A neonize client whose Go core is the fake network above."""

    network: FakeWhatsApp
    qr_first_ttl: float
    qr_ttl: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_finalizer.detach()  # no Go session ever exists for it
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._stopped = threading.Event()
        self.running = False
        self.current_qr: str | None = None
        self._codes = itertools.count(1)

    # -- what the network does to this client ------------------------------------------------
    def push(self, event: Any) -> None:
        self._queue.put(lambda: execute(self, event))

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        timer = threading.Timer(delay, lambda: self._queue.put(fn))
        timer.daemon = True
        timer.start()

    def _new_qr(self) -> None:
        if self.current_qr is None and stored_device(self.name) is not None:
            return
        code = f"2@fake{next(self._codes)}{secrets.token_hex(6)},{self.uuid.decode()}"
        self.current_qr = code
        show_qr(self, code)

    # -- the neonize API, as the engine uses it ----------------------------------------------
    def connect(self, proxy_settings: Any = None) -> None:
        net = self.network
        with net.lock:
            net.connects += 1
            net.links[self.uuid.decode()] = _Link(self)
        self.running = True
        device = stored_device(self.name)
        try:
            if device is not None:
                user = device.split(":")[0].split("@")[0]
                with net.lock:
                    net.links[self.uuid.decode()].phone = "+" + user
                execute(self, _device(jid(user, 7)))
                execute(self, ConnectedEv(status=True))
            else:
                self._new_qr()
                deadline = time.monotonic() + self.qr_first_ttl
            while not self._stopped.is_set():
                if device is None and self.current_qr is not None:
                    if time.monotonic() >= deadline:
                        self._new_qr()
                        deadline = time.monotonic() + self.qr_ttl
                    timeout = max(0.0, deadline - time.monotonic())
                else:
                    timeout = 0.5
                try:
                    item = self._queue.get(timeout=min(timeout, 0.5))
                except queue.Empty:
                    continue
                if item is None:
                    break
                item()
        finally:
            self.running = False

    def stop(self) -> None:
        self._stopped.set()
        self._queue.put(None)

    def logout(self) -> None:
        with sqlite3.connect(self.name) as db:
            db.execute("DELETE FROM whatsmeow_device")

    def PairPhone(self, phone: str, show_push_notification: bool, **_: Any) -> str:
        code = secrets.token_hex(4).upper()
        with self.network.lock:
            self.network.pair_codes[code] = (self.uuid.decode(), "+" + phone)
        return f"{code[:4]}-{code[4:]}"

    def send_message(self, to: JID, message: str | Message, **_: Any) -> SendResponse:
        if isinstance(message, str):
            message = Message(conversation=message)
        message_id = self.network.deliver(self, "+" + to.User, message)
        return SendResponse(ID=message_id, Timestamp=int(time.time()))

    # neonize's send_image/send_document build their message with `upload` (the Go call
    # this replaces); download_any is how whatsmeow fetches and decrypts inbound media.
    def upload(self, binary: bytes, media_type: Any = None) -> UploadResponse:
        return self.network.store_blob(bytes(binary))

    def download_any(self, message: Message, path: str | None = None) -> bytes:
        for name, _ in MEDIA_FIELDS.values():
            if message.HasField(name):
                with self.network.lock:
                    return self.network.blobs[getattr(message, name).directPath]
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
