"""The wire between a worker and its whatsmeow hosts (engines/whatsmeow/rpc.py): frames
round-trip, and a frame that breaks the rules is a ProtocolError (the reader then ends
that host), never a crash or an unbounded read."""

from __future__ import annotations

import pytest

from zapgate.engines.whatsmeow import rpc
from zapgate.engines.whatsmeow.rpc import Frame, Note, ProtocolError


def roundtrip(frame: Frame) -> Frame:
    data = frame.encode()
    head, size = rpc.parse_prefix(data[: rpc.PREFIX.size])
    header = rpc.parse_header(data[rpc.PREFIX.size : rpc.PREFIX.size + head])
    return Frame(header, data[rpc.PREFIX.size + head :][:size])


def test_requests_replies_and_notes_round_trip() -> None:
    req = roundtrip(rpc.request("send_media", 7, b"\x00bytes", client="u1-a", kind="image"))
    assert (req.op, req.header["rid"], req.header["kind"], req.body) == (
        "send_media",
        7,
        "image",
        b"\x00bytes",
    )
    assert roundtrip(rpc.reply(7, id="3EB0AA")).header == {
        "id": "3EB0AA",
        "op": "reply",
        "rid": 7,
        "ok": True,
    }
    assert roundtrip(rpc.failure(7, "x" * 5000)).header["error"] == "x" * 2000
    note = Note("message", "u1-a", 3, {"id": "M1", "text": "oi"}, b"raw")
    assert Note.from_frame(roundtrip(note.frame())) == note


def test_a_frame_that_breaks_the_rules_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="too large"):
        rpc.parse_prefix(rpc.PREFIX.pack(rpc.MAX_HEADER + 1, 0))
    with pytest.raises(ProtocolError, match="too large"):
        rpc.parse_prefix(rpc.PREFIX.pack(10, rpc.MAX_BODY + 1))
    with pytest.raises(ProtocolError, match="unreadable"):
        rpc.parse_header(b"{not json")
    with pytest.raises(ProtocolError, match="an op"):
        rpc.parse_header(b'["op"]')
    with pytest.raises(ProtocolError, match="unknown note kind"):
        Note.from_frame(Frame({"op": "note", "kind": "gossip", "client": "u1-a"}))
