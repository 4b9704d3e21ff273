"""Small, pure helpers for media messages: file names on disk, MIME types, file names
shown to recipients."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from urllib.parse import quote

from zapgate.errors import ValidationFailed
from zapgate.i18n import N_

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# Magic numbers of the formats WhatsApp takes, most specific first.
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\xff\xfb", "audio/mpeg"),
    (4, b"ftypM4A", "audio/mp4"),
    (4, b"ftyp3gp", "video/3gpp"),
    (4, b"ftyp", "video/mp4"),
    (0, b"PK\x03\x04", "application/zip"),
)


def media_url(session_name: str, message_id: str) -> str:
    """The API path (relative to the server) that serves a message's media."""
    return f"/v1/sessions/{session_name}/messages/{quote(message_id, safe='')}/media"


def file_name(message_id: str) -> str:
    """The name a message's media gets on disk: the id when it is a safe name (every id
    zapgate and WhatsApp make is), else a digest of it."""
    if _SAFE_ID.fullmatch(message_id):
        return message_id
    return hashlib.sha256(message_id.encode()).hexdigest()


def sniff(data: bytes) -> str | None:
    """The MIME type the first bytes say, for the common formats; None when unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for offset, magic, mime in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return mime
    return None


def normalize_mime(mime: str | None) -> str | None:
    """A bare `type/subtype` in lower case (parameters dropped), or None when absent;
    422 when it is not a MIME type."""
    if mime is None or not mime.strip():
        return None
    value = mime.split(";", 1)[0].strip().lower()
    if not _MIME.fullmatch(value):
        raise ValidationFailed(
            N_("media.mime: {mime!r} is not a MIME type (e.g. image/png)"), mime=mime[:60]
        )
    return value


def guess_mime(filename: str | None) -> str | None:
    if not filename:
        return None
    return mimetypes.guess_type(filename, strict=False)[0]


def clean_filename(name: str | None) -> str | None:
    """A file name safe to show and to put in a header: no path, no control characters,
    at most 200 characters."""
    if name is None:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return name[:200] or None
