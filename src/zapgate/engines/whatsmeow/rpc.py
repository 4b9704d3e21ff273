"""The wire between a worker and its whatsmeow host processes (host.py): frames over a
Unix socket pair, in both directions.

A frame is an 8-byte prefix (big-endian lengths of the header and of the body), a JSON
header and an opaque body (media bytes, a serialized protobuf the worker hands back
without reading it). Three kinds of header:

* a request, worker → host: `{"op": <Op>, "rid": n, ...arguments}`;
* its reply, host → worker: `{"op": "reply", "rid": n, "ok": true, ...results}` or
  `{"op": "reply", "rid": n, "ok": false, "error": "..."}`;
* a note, host → worker, about one session's connection attempt:
  `{"op": "note", "client": id, "attempt": n, "kind": <NoteKind>, ...fields}`.

Nothing here imports neonize: the worker never loads the Go runtime; the host turns
whatsmeow's protobufs into the plain fields of a note (convert.py).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

PREFIX = struct.Struct(">II")
# A header is small; a body carries at most one media file (WhatsApp's documents are at
# most 2 GB, zapgate's uploads and downloads far less).
MAX_HEADER = 1 << 20
MAX_BODY = 1 << 30

Op = Literal[
    "start",
    "stop",
    "pair",
    "send_text",
    "send_media",
    "send_location",
    "send_contacts",
    "send_poll",
    "react",
    "edit",
    "revoke",
    "mark_read",
    "presence",
    "download",
    "logout",
    "check_numbers",
    "contact_profile",
    "set_blocked",
    "address_book",
    "reject_call",
]

NoteKind = Literal[
    "qr",  # code
    "pair",  # ok, jid, error
    "connected",  # jid (or null)
    # id, chat, chat_lid, sender, sender_lid, from_me, text, timestamp, media, extras,
    # push_name
    "message",
    "reaction",  # id, chat, ..., from_me, timestamp, target_id, emoji
    "edited",  # chat, ..., from_me, timestamp, target_id, text
    "revoked",  # chat, ..., from_me, timestamp, target_id
    "poll_vote",  # chat, ..., timestamp, poll_id, selected_hashes
    "presence",  # chat, ..., state, last_seen
    "receipt",  # ids, status ("delivered" | "read")
    "chat_read",  # chat, chat_lid, ids, timestamp: the account read a chat elsewhere
    "call",  # id, caller, caller_lid, timestamp, video, group
    "logged_out",  # reason
    "disconnected",
    "connect_failure",  # reason
    "keepalive_timeout",
    "keepalive_restored",
    "stream_replaced",
    "temporary_ban",  # code, expire (seconds)
    "client_outdated",
    "ended",  # error (or null): connect() returned, the attempt is over
]
NOTE_KINDS: frozenset[str] = frozenset(get_args(NoteKind))


class ProtocolError(Exception):
    """A frame that does not follow this module's rules."""


@dataclass(frozen=True, slots=True)
class Frame:
    header: dict[str, Any]
    body: bytes = b""

    @property
    def op(self) -> str:
        return str(self.header.get("op", ""))

    def encode(self) -> bytes:
        head = json.dumps(self.header, separators=(",", ":")).encode()
        return PREFIX.pack(len(head), len(self.body)) + head + self.body


def parse_prefix(prefix: bytes) -> tuple[int, int]:
    head, body = PREFIX.unpack(prefix)
    if head > MAX_HEADER or body > MAX_BODY:
        raise ProtocolError(f"frame too large ({head} + {body} bytes)")
    return int(head), int(body)


def parse_header(raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"unreadable header: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(header.get("op"), str):
        raise ProtocolError("a header is an object with an op")
    return header


@dataclass(frozen=True, slots=True)
class Note:
    """Something a host reports about one session's connection attempt."""

    kind: NoteKind
    client: str
    attempt: int
    fields: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def from_frame(cls, frame: Frame) -> Note:
        h = dict(frame.header)
        kind = h.pop("kind", None)
        if kind not in NOTE_KINDS:
            raise ProtocolError(f"unknown note kind {kind!r}")
        h.pop("op")
        return cls(
            kind=kind,
            client=str(h.pop("client", "")),
            attempt=int(h.pop("attempt", 0)),
            fields=h,
            body=frame.body,
        )

    def frame(self) -> Frame:
        header = {
            **self.fields,
            "op": "note",
            "kind": self.kind,
            "client": self.client,
            "attempt": self.attempt,
        }
        return Frame(header, self.body)


def request(op: Op, rid: int, body: bytes = b"", **args: Any) -> Frame:
    return Frame({**args, "op": op, "rid": rid}, body)


def reply(rid: int, body: bytes = b"", **results: Any) -> Frame:
    return Frame({**results, "op": "reply", "rid": rid, "ok": True}, body)


def failure(rid: int, error: str) -> Frame:
    return Frame({"op": "reply", "rid": rid, "ok": False, "error": error[:2000]})
