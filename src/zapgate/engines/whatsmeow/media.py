"""Inside a host process: media through whatsmeow, building and sending an outbound media
message (upload included) and fetching an inbound one. Blocking calls into Go: the host
runs them on its call threads, with a share of the Go maps (bridge.GO_MAPS.call)."""

from __future__ import annotations

from typing import Any

from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import AudioMessage, Message, VideoMessage
from neonize.utils.enum import MediaType


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


def download(client: Any, message: Any) -> bytes:
    """The media of an inbound message, downloaded and decrypted by whatsmeow (blocking)."""
    return bytes(client.download_any(message))
