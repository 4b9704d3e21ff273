"""Small, valid media files for tests (a real PNG: neonize's send_image thumbnails it)."""

from __future__ import annotations

import io

from PIL import Image


def png_bytes(size: int = 8, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(width: int = 32, height: int = 20) -> bytes:
    """A link preview's thumbnail: a small JPEG."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def webp_bytes(size: int = 64, color: tuple[int, int, int] = (30, 160, 60)) -> bytes:
    """A sticker: WhatsApp's are 512x512 webp; any webp goes through the engines."""
    buf = io.BytesIO()
    Image.new("RGBA", (size, size), (*color, 255)).save(buf, format="WEBP")
    return buf.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
OGG = b"OggS" + bytes(60)
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(40)
