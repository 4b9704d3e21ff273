"""What the bytes of a media file prove about its type (issue 8 item 11)."""

from __future__ import annotations

import pytest

from tests.media_samples import MP4, OGG, PDF, png_bytes
from zapgate.domain.media import bytes_match, sniff

ZIP = b"PK\x03\x04" + bytes(30)
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(30)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(30)
HEIC = b"\x00\x00\x00\x18ftypheic" + bytes(30)
MP3 = b"ID3\x03\x00" + bytes(30)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (png_bytes(), "image/png"),
        (b"\xff\xd8\xff\xe0" + bytes(20), "image/jpeg"),
        (b"\xff\xd8\xff\xe0" + bytes(20), "image/jpg"),
        (PDF, "application/pdf"),
        (OGG, "audio/ogg"),
        (OGG, "audio/opus"),
        (MP3, "audio/mpeg"),
        (MP4, "video/mp4"),
        (MP4, "audio/mp4"),
        (HEIC, "image/heic"),
        (WAV, "audio/wav"),
        (ZIP, "application/zip"),
        (ZIP, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (ZIP, "application/vnd.oasis.opendocument.text"),
        (OLE, "application/msword"),
        (b"hello", "text/plain"),
        (b"BM" + bytes(40), "image/bmp"),
    ],
)
def test_bytes_of_the_declared_type_match(data: bytes, mime: str) -> None:
    assert bytes_match(mime, sniff(data))


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (PDF, "image/png"),
        (png_bytes(), "image/jpeg"),
        (b"<html></html>", "image/png"),
        (b"<html></html>", "image/jpeg"),
        (b"plain", "application/pdf"),
        (png_bytes(), "application/pdf"),
        (MP4, "audio/ogg"),
        (b"plain", "video/mp4"),
        (b"plain", "audio/mpeg"),
        (b"plain", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (PDF, "text/plain"),
        (OLE, "application/zip"),
    ],
)
def test_bytes_of_another_type_do_not(data: bytes, mime: str) -> None:
    assert not bytes_match(mime, sniff(data))
