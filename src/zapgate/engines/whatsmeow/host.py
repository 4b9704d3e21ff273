"""A whatsmeow host: the child process that runs neonize clients for a worker
(`python -m zapgate.engines.whatsmeow.host --fd N`). The worker never loads neonize.

Why a process: neonize's Go core cannot be stopped while a device is unpaired (its QR
loop waits on a channel whatsmeow never closes, and `FetchMe` spins without checking its
context), its threads are not daemons, and a nil device crashes Go. What can wedge or
crash is therefore a process the worker can kill (procs.py decides which sessions share
one). The host reads requests (rpc.py) from its socket on the main thread, runs each on
a call thread, and writes replies and notes back; when the worker goes away (the socket
closes, or the worker dies: PR_SET_PDEATHSIG) the host exits at once, Go threads and all.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from zapgate import logredact
from zapgate.engines.whatsmeow import contacts, convert, media, messages, rpc
from zapgate.engines.whatsmeow.bridge import GO_MAPS, ClientFactory, Connection, bind, new_client
from zapgate.engines.whatsmeow.rpc import Frame, Note

logger = logging.getLogger("zapgate.engines.whatsmeow.host")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(min(n - len(chunks), 1 << 20))
        if not chunk:
            raise EOFError
        chunks += chunk
    return bytes(chunks)


class Host:
    def __init__(self, sock: socket.socket, factory: ClientFactory) -> None:
        self.sock = sock
        self.factory = factory
        self._send_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="zapgate-wa-call")
        self._lock = threading.Lock()
        self.sessions: dict[str, Connection] = {}
        self._handlers: dict[
            str, Callable[[dict[str, Any], bytes], tuple[dict[str, Any], bytes]]
        ] = {
            "start": self._start,
            "stop": self._stop,
            "pair": self._pair,
            "send_text": self._send_text,
            "send_media": self._send_media,
            "send_location": self._send_location,
            "send_contacts": self._send_contacts,
            "send_poll": self._send_poll,
            "react": self._react,
            "edit": self._edit,
            "revoke": self._revoke,
            "mark_read": self._mark_read,
            "presence": self._presence,
            "download": self._download,
            "logout": self._logout,
            "check_numbers": self._check_numbers,
            "contact_profile": self._contact_profile,
            "set_blocked": self._set_blocked,
            "address_book": self._address_book,
            "reject_call": self._reject_call,
        }

    # -- the socket ----------------------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        data = frame.encode()
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                os._exit(0)  # the worker is gone: nothing here is worth keeping

    def post(self, note: Note) -> None:
        self.write(note.frame())

    def serve(self) -> None:
        try:
            while True:
                head, size = rpc.parse_prefix(_recv_exact(self.sock, rpc.PREFIX.size))
                header = rpc.parse_header(_recv_exact(self.sock, head))
                body = _recv_exact(self.sock, size) if size else b""
                self._pool.submit(self._handle, header, body)
        except (EOFError, OSError):
            pass
        except rpc.ProtocolError as exc:
            logger.error("the worker sent a bad frame: %s", exc)
        # Without its worker nobody reads what the sessions report: leave now, without
        # waiting for Go's threads (they are what a host exists to be able to abandon).
        os._exit(0)

    def _handle(self, header: dict[str, Any], body: bytes) -> None:
        rid = int(header.get("rid", 0))
        handler = self._handlers.get(str(header.get("op")))
        try:
            if handler is None:
                raise ValueError(f"unknown op {header.get('op')!r}")
            fields, out = handler(header, body)
        except Exception as exc:
            detail = str(exc) or type(exc).__name__
            self.write(rpc.failure(rid, detail))
            return
        self.write(rpc.reply(rid, out, **fields))

    def _connection(self, header: dict[str, Any]) -> Connection:
        with self._lock:
            conn = self.sessions.get(str(header["client"]))
        if conn is None:
            raise LookupError(f"no client {header['client']!r} in this host")
        return conn

    def _calls(self, fn: Callable[[], None]) -> None:
        self._pool.submit(fn)

    # -- requests ------------------------------------------------------------------------------
    def _start(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client_id = str(h["client"])
        jid = h.get("jid")
        resume = (
            convert.make_jid(str(jid["user"]), str(jid["server"]), int(jid["device"]))
            if jid
            else None
        )
        client = self.factory(
            store=str(h["store"]), uuid=client_id, jid=resume, new_device=bool(h["new_device"])
        )
        bind(client, client_id)
        conn = Connection(
            client,
            client_id=client_id,
            attempt=int(h["attempt"]),
            post=self.post,
            calls=self._calls,
        )
        with self._lock:
            old = self.sessions.pop(client_id, None)
        if old is not None:
            old.stop(0.0)
        with self._lock:
            self.sessions[client_id] = conn
        conn.start(h.get("proxy"))
        return {}, b""

    def _stop(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        with self._lock:
            conn = self.sessions.pop(str(h["client"]), None)
        ended = True if conn is None else conn.stop(float(h.get("join", 5.0)))
        return {"ended": ended}, b""

    def _pair(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        phone = str(h["phone"])
        code = GO_MAPS.call(lambda: str(client.PairPhone(phone, show_push_notification=True)))
        return {"code": code}, b""

    def _send_text(self, h: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        """A text; a link preview's thumbnail comes as the body."""
        client = self._connection(h).client
        to, text = convert.target(str(h["to"])), str(h["text"])
        mentions = [str(m) for m in h.get("mentions") or ()]
        return {
            "id": GO_MAPS.call(
                lambda: messages.send_text(
                    client, to, text, h.get("quote"), mentions, h.get("preview"), body
                )
            )
        }, b""

    def _send_location(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        to = convert.target(str(h["to"]))
        return {
            "id": GO_MAPS.call(
                lambda: messages.send_location(client, to, h["location"], h.get("quote"))
            )
        }, b""

    def _send_contacts(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        to = convert.target(str(h["to"]))
        return {
            "id": GO_MAPS.call(
                lambda: messages.send_contacts(client, to, list(h["contacts"]), h.get("quote"))
            )
        }, b""

    def _send_poll(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        to = convert.target(str(h["to"]))
        return {"id": GO_MAPS.call(lambda: messages.send_poll(client, to, h["poll"]))}, b""

    def _react(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        chat, target, emoji = convert.target(str(h["chat"])), h["target"], str(h["emoji"])
        return {"id": GO_MAPS.call(lambda: messages.react(client, chat, target, emoji))}, b""

    def _edit(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        chat, target_id, text = convert.target(str(h["chat"])), str(h["target_id"]), str(h["text"])
        return {"id": GO_MAPS.call(lambda: messages.edit(client, chat, target_id, text))}, b""

    def _revoke(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        chat, target = convert.target(str(h["chat"])), h["target"]
        return {"id": GO_MAPS.call(lambda: messages.revoke(client, chat, target))}, b""

    def _mark_read(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        chat, ids, sender = convert.target(str(h["chat"])), list(h["ids"]), h.get("sender")
        GO_MAPS.call(lambda: messages.mark_read(client, chat, ids, sender))
        return {}, b""

    def _presence(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        conn = self._connection(h)
        chat = convert.target(str(h["chat"]))
        key = str(h["chat"])
        announce = key not in conn.presence_subscribed
        GO_MAPS.call(
            lambda: messages.set_presence(conn.client, chat, str(h["state"]), announce=announce)
        )
        conn.presence_subscribed.add(key)
        return {}, b""

    def _send_media(self, h: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        to = convert.target(str(h["to"]))

        def send() -> Any:
            return media.send(
                client,
                to,
                kind=str(h["kind"]),
                data=body,
                mime=str(h["mime"]),
                filename=h.get("filename"),
                caption=h.get("caption"),
                quote=h.get("quote"),
            )

        return {"id": str(GO_MAPS.call(send).ID)}, b""

    def _download(self, h: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        client = self._connection(h).client
        message = Message.FromString(body)
        return {}, GO_MAPS.call(lambda: media.download(client, message))

    def _check_numbers(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        phones = [str(p) for p in h["phones"]]
        return {"checks": GO_MAPS.call(lambda: contacts.check_numbers(client, phones))}, b""

    def _contact_profile(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        address = str(h["address"])
        return {"profile": GO_MAPS.call(lambda: contacts.profile(client, address))}, b""

    def _set_blocked(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        address, blocked = str(h["address"]), bool(h["blocked"])
        GO_MAPS.call(lambda: contacts.set_blocked(client, address, blocked))
        return {}, b""

    def _address_book(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        return {"entries": GO_MAPS.call(lambda: contacts.address_book(client))}, b""

    def _reject_call(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        """Reject a ringing call with its creator's JID as the offer named it (whatsmeow's
        RejectCall addresses the reject to it); the caller's address otherwise."""
        conn = self._connection(h)
        call_id = str(h["call_id"])
        creator = conn.call_creator(call_id)
        if creator is None:
            creator = convert.target(str(h["caller"]))
        GO_MAPS.call(lambda: conn.client.reject_call(creator, call_id))
        return {}, b""

    def _logout(self, h: dict[str, Any], _: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._connection(h).client
        GO_MAPS.call(client.logout)
        return {}, b""


def load_factory(spec: str | None) -> ClientFactory:
    """`module:attribute` names another client factory (the tests' fake WhatsApp)."""
    if not spec:
        return new_client
    module, _, attr = spec.partition(":")
    factory: ClientFactory = getattr(importlib.import_module(module), attr)
    return factory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="zapgate-whatsmeow-host")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--factory", default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    _die_with_parent()
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s %(name)s [host {os.getpid()}] %(message)s",
    )
    logredact.install()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when a host ends
    sock = socket.socket(fileno=args.fd)
    Host(sock, load_factory(args.factory)).serve()


if __name__ == "__main__":
    main()
