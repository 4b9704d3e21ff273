"""Media for outbound messages: turning a URL, base64 text or an upload into checked bytes
(size limits first, SSRF guard on URLs), and keeping those bytes in the web tier's data
dir so a queued media send survives a restart."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import os
import shutil
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from PIL import Image

from zapgate.config import Settings
from zapgate.domain.media import (
    bytes_match,
    clean_filename,
    file_name,
    guess_mime,
    normalize_mime,
    sniff,
)
from zapgate.domain.models import SENDABLE_MEDIA
from zapgate.errors import MediaFetchFailed, MediaTypeMismatch, PayloadTooLarge, ValidationFailed
from zapgate.i18n import N_
from zapgate.net.client import guarded_client
from zapgate.net.ssrf import check_syntax

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
MEDIA_DIR = "media"
OCTET_STREAM = "application/octet-stream"
Reader = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaFile:
    """Checked media, ready to store and send."""

    kind: str
    data: bytes
    mime: str
    filename: str | None = None


def _too_large(kind: str, limit: int) -> PayloadTooLarge:
    setting = "ZAPGATE_MAX_DOCUMENT_BYTES" if kind == "document" else "ZAPGATE_MAX_MEDIA_BYTES"
    return PayloadTooLarge(
        N_("The {kind} is larger than {n} bytes."),
        hint=N_("Send a smaller file; {setting} sets the limit."),
        kind=kind,
        n=limit,
        setting=setting,
    )


# The MIME family of the kinds that are a special case of one.
_FAMILY = {"sticker": "image", "voice": "audio"}
# An ogg stream carries opus when its first page holds the opus header.
OPUS_HEAD = b"OpusHead"
OPUS_SCAN = 128
STICKER_SIZE = 512


def as_sticker(data: bytes, mime: str) -> tuple[bytes, str]:
    """A sticker as WhatsApp wants it: webp, at most 512x512. A webp that fits is sent
    as it is (an animated one keeps its frames); anything else is converted."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if mime == "image/webp" and max(img.size) <= STICKER_SIZE:
                    return data, mime
                img.thumbnail((STICKER_SIZE, STICKER_SIZE))
                out = io.BytesIO()
                img.convert("RGBA").save(out, format="WEBP")
    except (OSError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValidationFailed(
            N_("media: this {mime} image cannot be made into a sticker"),
            hint=N_("Send a PNG, JPEG or WebP image."),
            mime=mime,
        ) from None
    return out.getvalue(), "image/webp"


class MediaIntake:
    """Validates media from any source against the settings' limits."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def check_kind(self, kind: str, caption: str | None) -> int:
        if kind not in SENDABLE_MEDIA:
            raise ValidationFailed(
                N_("media.type: {kind!r} is not one of {kinds}"),
                kind=kind[:20],
                kinds=", ".join(SENDABLE_MEDIA),
            )
        if caption is not None and len(caption) > self.settings.max_text_chars:
            raise ValidationFailed(
                N_("caption: longer than {max} characters"), max=self.settings.max_text_chars
            )
        if kind in ("audio", "voice", "sticker") and caption:
            raise ValidationFailed(
                N_("caption: WhatsApp {kind} messages have no caption"),
                hint=N_("Send the text as a separate message."),
                kind=kind,
            )
        return self.settings.media_limit(kind)

    def finish(
        self,
        kind: str,
        data: bytes,
        *,
        mime: str | None,
        filename: str | None,
        served_mime: str | None = None,
    ) -> MediaFile:
        if not data:
            raise ValidationFailed(N_("media: the file is empty"))
        filename = clean_filename(filename)
        detected = sniff(data)
        declared = normalize_mime(mime)
        resolved = (
            (declared if declared != OCTET_STREAM else None)
            or detected
            or _generic_or_none(served_mime)
            or guess_mime(filename)
            or OCTET_STREAM
        )
        if resolved != OCTET_STREAM and not bytes_match(resolved, detected):
            if detected is None:
                raise MediaTypeMismatch(
                    N_("media: the bytes are not {mime} (no known file signature)"),
                    mime=resolved,
                )
            raise MediaTypeMismatch(
                N_("media: the bytes are {detected}, not {mime}"), detected=detected, mime=resolved
            )
        if kind != "document" and resolved.split("/", 1)[0] != _FAMILY.get(kind, kind):
            raise ValidationFailed(
                N_("media: a {mime} file cannot be sent as {kind}"),
                hint=N_('Send it with type "document", or give the right mime.'),
                mime=resolved,
                kind=kind,
            )
        if kind == "voice" and (resolved != "audio/ogg" or OPUS_HEAD not in data[:OPUS_SCAN]):
            raise ValidationFailed(
                N_("media: a voice note must be ogg/opus audio, not {mime}"),
                hint=N_(
                    "Convert it first (ffmpeg -i in.mp3 -c:a libopus out.ogg), or send it "
                    'with type "audio".'
                ),
                mime=resolved if resolved != "audio/ogg" else "ogg without opus",
            )
        if kind == "sticker":
            data, resolved = as_sticker(data, resolved)
        return MediaFile(kind=kind, data=data, mime=resolved, filename=filename)

    def from_base64(
        self, kind: str, text: str, *, mime: str | None, filename: str | None, caption: str | None
    ) -> MediaFile:
        limit = self.check_kind(kind, caption)
        text = text.strip()
        if text.startswith("data:") and "," in text:
            header, text = text.split(",", 1)  # a data: URL; its type is a hint
            mime = mime or header[5:].split(";", 1)[0] or None
        # Refuse before decoding: base64 is 4 characters per 3 bytes.
        if (len(text) // 4) * 3 > limit + 3:
            raise _too_large(kind, limit)
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed(N_("media.base64: not valid base64")) from exc
        if len(data) > limit:
            raise _too_large(kind, limit)
        return self.finish(kind, data, mime=mime, filename=filename)

    async def from_reader(
        self,
        kind: str,
        read: Reader,
        *,
        mime: str | None,
        filename: str | None,
        caption: str | None,
    ) -> MediaFile:
        limit = self.check_kind(kind, caption)
        chunks: list[bytes] = []
        total = 0
        while chunk := await read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise _too_large(kind, limit)
            chunks.append(chunk)
        return self.finish(kind, b"".join(chunks), mime=mime, filename=filename)

    async def from_url(
        self, kind: str, url: str, *, mime: str | None, filename: str | None, caption: str | None
    ) -> MediaFile:
        limit = self.check_kind(kind, caption)
        timeout = self.settings.media_fetch_timeout
        try:
            async with asyncio.timeout(timeout):
                data, served, name = await self._download(kind, url, limit)
        except TimeoutError:
            raise MediaFetchFailed(
                N_("media.url: no complete answer within {timeout:.0f}s"), timeout=timeout
            ) from None
        return self.finish(kind, data, mime=mime, filename=filename or name, served_mime=served)

    async def _download(
        self, kind: str, url: str, limit: int
    ) -> tuple[bytes, str | None, str | None]:
        allow = self.settings.allow_private_urls
        timeout = self.settings.media_fetch_timeout
        # Redirects are followed by hand: each hop is a new request, and the guarded
        # client checks the address each one connects to (SSRF, DNS rebinding).
        async with guarded_client(allow_private=allow, timeout=timeout) as client:
            for _ in range(MAX_REDIRECTS + 1):
                check_syntax(url)
                try:
                    async with client.stream("GET", url) as resp:
                        if resp.is_redirect and "location" in resp.headers:
                            url = urljoin(url, resp.headers["location"])
                            continue
                        host = urlsplit(url).hostname
                        if resp.status_code != 200:
                            raise MediaFetchFailed(
                                N_("media.url: {host} answered HTTP {status}"),
                                host=host,
                                status=resp.status_code,
                            )
                        length = resp.headers.get("content-length", "")
                        if length.isdigit() and int(length) > limit:
                            raise _too_large(kind, limit)
                        chunks: list[bytes] = []
                        total = 0
                        async for chunk in resp.aiter_bytes(CHUNK):
                            total += len(chunk)
                            if total > limit:
                                raise _too_large(kind, limit)
                            chunks.append(chunk)
                        name = unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or None
                        return b"".join(chunks), resp.headers.get("content-type"), name
                except httpx.HTTPError as exc:
                    detail = str(exc) or type(exc).__name__
                    raise MediaFetchFailed(
                        N_("media.url: download failed: {detail}"), detail=detail[:272]
                    ) from exc
        raise MediaFetchFailed(N_("media.url: more than {n} redirects"), n=MAX_REDIRECTS)


def _generic_or_none(mime: str | None) -> str | None:
    try:
        value = normalize_mime(mime)
    except ValidationFailed:
        return None
    return None if value in (None, "application/octet-stream") else value


class MediaStore:
    """Outbound media bytes under `<data_dir>/media/<client_id>/<message file name>`;
    refs are relative to the data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.root = self.data_dir / MEDIA_DIR

    @staticmethod
    def ref_for(client_id: str, message_id: str) -> str:
        return f"{MEDIA_DIR}/{client_id}/{file_name(message_id)}"

    def _path(self, ref: str) -> Path:
        path = (self.data_dir / ref).resolve()
        if not path.is_relative_to(self.root):
            raise ValidationFailed(N_("media ref {ref!r} is outside the media dir"), ref=ref[:80])
        return path

    async def save(self, ref: str, data: bytes) -> None:
        path = self._path(ref)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def read(self, ref: str) -> bytes:
        return await asyncio.to_thread(self._path(ref).read_bytes)

    async def delete(self, ref: str) -> None:
        await asyncio.to_thread(self._path(ref).unlink, True)

    async def delete_session(self, client_id: str) -> None:
        path = self._path(f"{MEDIA_DIR}/{client_id}")
        await asyncio.to_thread(shutil.rmtree, path, True)

    async def purge(self, older_than_days: float) -> int:
        """Retention: drop files as old as the messages the registry purges."""
        cutoff = time.time() - older_than_days * 86_400

        def run() -> int:
            dropped = 0
            if not self.root.is_dir():
                return 0
            for path in self.root.glob("*/*"):
                try:
                    if path.is_file() and path.stat().st_mtime < cutoff:
                        path.unlink()
                        dropped += 1
                except OSError:
                    logger.debug("retention: could not drop %s", path, exc_info=True)
            return dropped

        return await asyncio.to_thread(run)
