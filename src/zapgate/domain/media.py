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
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"\xff\xfb", "audio/mpeg"),
    (0, b"\xff\xf3", "audio/mpeg"),
    (0, b"\xff\xf2", "audio/mpeg"),
    (0, b"\xff\xf1", "audio/aac"),
    (0, b"\xff\xf9", "audio/aac"),
    (0, b"fLaC", "audio/flac"),
    (0, b"#!AMR", "audio/amr"),
    (4, b"ftypM4A", "audio/mp4"),
    (4, b"ftyp3gp", "video/3gpp"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftypheic", "image/heic"),
    (4, b"ftypheix", "image/heic"),
    (4, b"ftypmif1", "image/heif"),
    (4, b"ftypavif", "image/avif"),
    (4, b"ftyp", "video/mp4"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
)
_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}

# The MIME types one container or format is rightly declared as: the ISO base media file
# (MP4, MOV, 3GP, M4A, HEIC, AVIF) and ZIP (Office, OpenDocument, EPUB, APK) ones are many.
_ISO_BMFF = frozenset(
    {
        "video/mp4",
        "video/quicktime",
        "video/3gpp",
        "video/3gpp2",
        "audio/mp4",
        "audio/m4a",
        "audio/x-m4a",
        "audio/aac",
        "audio/3gpp",
        "image/heic",
        "image/heif",
        "image/avif",
    }
)
_ZIP_PREFIXES = (
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
    "application/vnd.ms-",
)
_FAMILIES: dict[str, frozenset[str]] = {
    "image/png": frozenset({"image/png", "image/apng"}),
    "image/jpeg": frozenset({"image/jpeg", "image/jpg", "image/pjpeg"}),
    "image/tiff": frozenset({"image/tiff", "image/tif"}),
    "audio/ogg": frozenset({"audio/ogg", "audio/opus", "video/ogg", "application/ogg"}),
    "audio/mpeg": frozenset({"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg"}),
    "audio/aac": frozenset({"audio/aac", "audio/x-aac", "audio/aacp"}),
    "audio/flac": frozenset({"audio/flac", "audio/x-flac"}),
    "audio/wav": frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"}),
    "video/x-msvideo": frozenset({"video/x-msvideo", "video/avi", "video/msvideo"}),
    "video/webm": frozenset({"video/webm", "audio/webm", "video/x-matroska", "audio/x-matroska"}),
    "application/zip": frozenset(
        {
            "application/zip",
            "application/x-zip-compressed",
            "application/epub+zip",
            "application/java-archive",
            "application/vnd.android.package-archive",
        }
    ),
    "application/x-ole-storage": frozenset(
        {
            "application/x-ole-storage",
            "application/msword",
            "application/vnd.ms-excel",
            "application/vnd.ms-powerpoint",
            "application/vnd.ms-outlook",
            "application/vnd.visio",
        }
    ),
}
for _mime in ("video/mp4", "video/3gpp", "video/quicktime", "audio/mp4", "image/heic"):
    _FAMILIES[_mime] = _ISO_BMFF
for _mime in ("image/heif", "image/avif"):
    _FAMILIES[_mime] = _ISO_BMFF
# Every type some signature proves: bytes declared as one of these must show it.
PROVABLE: frozenset[str] = frozenset(
    {mime for _, _, mime in _SIGNATURES}
    | set(_RIFF.values())
    | {m for family in _FAMILIES.values() for m in family}
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
    if data[:4] == b"RIFF" and data[8:12] in _RIFF:
        return _RIFF[data[8:12]]
    for offset, magic, mime in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            return mime
    return None


def bytes_match(mime: str, detected: str | None) -> bool:
    """Whether bytes sniffed as `detected` (None: no known signature) may be sent as
    `mime`. Types no signature proves (text/plain, image/bmp...) take any bytes without a
    known signature."""
    if detected is None:
        return mime not in PROVABLE and not mime.startswith(_ZIP_PREFIXES[:2])
    if mime == detected or mime in _FAMILIES.get(detected, ()):
        return True
    return detected == "application/zip" and mime.startswith(_ZIP_PREFIXES)


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
