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
* ConnectFailure, KeepAliveTimeout without Disconnected, and the rest, pushed by a test.

`LoopbackSocks` is a SOCKS5 proxy on 127.0.0.1 that records which host whatsmeow asked
for and answers "host unreachable": it lets the real neonize dial, offline, without one
packet leaving the machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import hashlib
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

from zapgate.engines.backends import WhatsmeowConfig

ROOT = Path(__file__).resolve().parents[2]
ENV_ADDRESS = "FAKE_WHATSAPP_ADDRESS"
FACTORY = "tests.contract.whatsmeow_fake:host_client"

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


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _jid_str(j: JID) -> str:
    return f"{j.User}:{j.Device}@{j.Server}" if j.Device else f"{j.User}@{j.Server}"


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
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)

    def send(self, obj: dict[str, Any]) -> None:
        if self.stopped:
            return
        data = (json.dumps(obj) + "\n").encode()
        with self.lock, contextlib.suppress(OSError):
            self.conn.sendall(data)

    def push(self, event: Any) -> None:
        """Deliver `event` as Go does: its serialized bytes and its event code."""
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
            self.connects += 1
            self.links[uuid] = link
        device = _device_of(store, hello.get("user"))
        reader = threading.Thread(target=self._read_until_closed, args=(link, rfile), daemon=True)
        reader.start()
        if device is not None:
            link.paired = True
            link.phone = "+" + device.split("@")[0].split(":")[0]
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
        if op == "pn_from_lid":
            phone = link.learned.get(str(req["lid"]))
            return {"user": phone.lstrip("+") if phone else None}
        if op == "lid_from_pn":
            phone = "+" + str(req["user"])
            lid = next((u for u, p in link.learned.items() if p == phone), None)
            return {"user": lid}
        raise ValueError(f"unknown op {op}")

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

    def phone_send(self, phone: str, to: str, text: str) -> str:
        link = self.by_phone(to)
        message_id = "3EB0" + secrets.token_hex(8).upper()
        if link is not None:
            link.push(
                message_event(message_id, self._source(phone, link), Message(conversation=text))
            )
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
                src = source(chat, jid(phone))
                link.push(message_event(message_id, src, skdm))
                link.push(message_event(message_id, src, Message(conversation=text)))
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
        link = self.by_phone(to)
        if link is not None:
            link.push(message_event(message_id, self._source(phone, link), message))
        return message_id

    def deliver(self, sender: Link, to: str, message: Message) -> str:
        """A linked device sent `message` to `to` (`user@server`): inbox it, then send
        receipts back."""
        user, _, server = to.partition("@")
        with self.lock:
            phone = self.lids.get(user, "") if server == "lid" else "+" + user
        if server != "lid":
            # whatsmeow learns the LID of a number it sends to (usync).
            sender.learned[self.lid_of(phone).removesuffix("@lid")] = phone
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
            self.inboxes.setdefault(phone, []).append({**entry, "from": sender.phone})
        recipient = self.by_phone(phone)
        if recipient is not None and sender.phone is not None:
            recipient.push(
                message_event(message_id, self._source(sender.phone, recipient), message)
            )

        def receipt(kind: int) -> Callable[[], None]:
            return lambda: sender.push(receipt_event(jid(phone), [message_id], kind))

        sender.later(self.deliver_delay, receipt(Receipt.DELIVERED))
        sender.later(self.read_delay, receipt(Receipt.READ))
        return message_id

    def log_out_from_phone(self, phone: str) -> None:
        link = self.by_phone(phone)
        assert link is not None, f"no linked device for {phone}"
        delete_device(link.store, phone.lstrip("+"))  # whatsmeow deletes it on LoggedOut
        link.push(LoggedOutEv(OnConnect=False, Reason=2))  # LOGGED_OUT


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


class RemoteClient(NewClient):  # type: ignore[misc]
    """A neonize client whose Go core is the fake network."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stop_finalizer.detach()  # no Go session ever exists for it

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

    def get_pn_from_lid(self, lid: JID) -> JID:
        user = _ask({"op": "pn_from_lid", "uuid": self.uuid.decode(), "lid": lid.User})["user"]
        if not user:
            raise RuntimeError("no phone number for this lid")
        return jid(user)

    def get_lid_from_pn(self, pn: JID) -> JID:
        user = _ask({"op": "lid_from_pn", "uuid": self.uuid.decode(), "user": pn.User})["user"]
        if not user:
            raise RuntimeError("no lid for this phone number")
        return jid(user, server="lid")

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
