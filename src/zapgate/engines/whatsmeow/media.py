"""Media through whatsmeow: building and sending an outbound media message (upload
included), and fetching an inbound one. The blocking functions call into Go: run them on
a Go-call thread, under the shared hold of the Go maps."""

from __future__ import annotations

from typing import Any

from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import AudioMessage, Message, VideoMessage
from neonize.utils.enum import MediaType

from zapgate.domain.events import MediaContent
from zapgate.engines.whatsmeow.convert import MEDIA_FIELDS

_MEDIA_KIND = {
    "imageMessage": "image",
    "videoMessage": "video",
    "documentMessage": "document",
    "audioMessage": "audio",
    "stickerMessage": "sticker",
}


def _audio_video(client: Any, kind: str, data: bytes, mime: str, caption: str | None) -> Any:
    """An audio or video message built from an upload. neonize's own builders
    (build_audio_message/build_video_message) run ffmpeg for the duration and thumbnail;
    this one needs no ffmpeg (WhatsApp shows the media without them)."""
    upload = client.upload(data, MediaType.MediaAudio if kind == "audio" else MediaType.MediaVideo)
    common: dict[str, Any] = {
        "URL": upload.url,
        "directPath": upload.DirectPath,
        "fileEncSHA256": upload.FileEncSHA256,
        "fileLength": upload.FileLength,
        "fileSHA256": upload.FileSHA256,
        "mediaKey": upload.MediaKey,
        "mimetype": mime,
    }
    if kind == "audio":
        return Message(audioMessage=AudioMessage(PTT=False, **common))
    return Message(videoMessage=VideoMessage(caption=caption or None, **common))


def send(
    client: Any,
    jid: Any,
    *,
    kind: str,
    data: bytes,
    mime: str,
    filename: str | None,
    caption: str | None,
) -> Any:
    """Upload `data` and send it to `jid` as an image, document, audio or video (blocking);
    returns whatsmeow's send response."""
    if kind == "image":
        return client.send_image(jid, data, caption=caption or None)
    if kind == "document":
        return client.send_document(
            jid, data, caption=caption or None, filename=filename, mimetype=mime
        )
    return client.send_message(jid, _audio_video(client, kind, data, mime, caption))


def field(message: Any) -> str | None:
    """The name of the media field `message` carries, None for a message without media."""
    return next((name for name in MEDIA_FIELDS if message.HasField(name)), None)


def download(client: Any, message: Any) -> bytes:
    """The media of an inbound message, downloaded and decrypted by whatsmeow (blocking)."""
    return bytes(client.download_any(message))


def content(name: str, message: Any, data: bytes | None) -> MediaContent:
    """The media of `message` (carried in its field `name`); `data` is None when it could
    not be downloaded or was too large, and then the size is the one WhatsApp announced."""
    sub = getattr(message, name)
    return MediaContent(
        kind=_MEDIA_KIND[name],
        mime=str(sub.mimetype) or "application/octet-stream",
        size=len(data) if data is not None else int(sub.fileLength),
        filename=(str(sub.fileName) or None) if name == "documentMessage" else None,
        sha256=bytes(sub.fileSHA256).hex() or None,
        data=data,
    )
