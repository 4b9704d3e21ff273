"""Inside a host process: media through whatsmeow, building and sending an outbound media
message (upload included) and fetching an inbound one. Blocking calls into Go: the host
runs them on its call threads, with a share of the Go maps (bridge.GO_MAPS.call)."""

from __future__ import annotations

from typing import Any

from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import AudioMessage, Message, VideoMessage
from neonize.utils.enum import MediaType

from zapgate.engines.whatsmeow import messages

# The mimetype WhatsApp's apps give a voice note (an ogg/opus push-to-talk audio).
VOICE_MIME = "audio/ogg; codecs=opus"


def _audio_video(client: Any, kind: str, data: bytes, mime: str, caption: str | None) -> Any:
    """An audio, voice note or video message built from an upload. neonize's own builders
    (build_audio_message/build_video_message) run ffmpeg for the duration and thumbnail;
    this one needs no ffmpeg (WhatsApp shows the media without them)."""
    video = kind == "video"
    upload = client.upload(data, MediaType.MediaVideo if video else MediaType.MediaAudio)
    common: dict[str, Any] = {
        "URL": upload.url,
        "directPath": upload.DirectPath,
        "fileEncSHA256": upload.FileEncSHA256,
        "fileLength": upload.FileLength,
        "fileSHA256": upload.FileSHA256,
        "mediaKey": upload.MediaKey,
        "mimetype": VOICE_MIME if kind == "voice" else mime,
    }
    if not video:
        return Message(audioMessage=AudioMessage(PTT=kind == "voice", **common))
    return Message(videoMessage=VideoMessage(caption=caption or None, **common))


def _build(
    client: Any,
    kind: str,
    data: bytes,
    mime: str,
    filename: str | None,
    caption: str | None,
    quote: Any,
) -> Any:
    """The message for `data` as `kind`, uploaded; `quote` is the quoted event or None."""
    if kind == "image":
        return client.build_image_message(data, caption=caption or None, quoted=quote)
    if kind == "document":
        return client.build_document_message(
            data, caption=caption or None, filename=filename, mimetype=mime, quoted=quote
        )
    if kind == "sticker":
        # A webp already (the gateway converts other images): sent as it is.
        return client.build_sticker_message(data, quoted=quote, passthrough=True)
    message = _audio_video(client, kind, data, mime, caption)
    if quote is None:
        return message
    return client.build_reply_message(
        message.videoMessage if kind == "video" else message.audioMessage, quote
    )


def send(
    client: Any,
    jid: Any,
    *,
    kind: str,
    data: bytes,
    mime: str,
    filename: str | None,
    caption: str | None,
    quote: dict[str, Any] | None = None,
) -> Any:
    """Upload `data` and send it to `jid` as an image, document, audio, video, sticker or
    voice note (blocking), replying to `quote`; returns whatsmeow's send response."""
    quoted = messages.quoted(client, jid, quote) if quote else None
    message = _build(client, kind, data, mime, filename, caption, quoted)
    return client.send_message(jid, message)


def download(client: Any, message: Any) -> bytes:
    """The media of an inbound message, downloaded and decrypted by whatsmeow (blocking)."""
    return bytes(client.download_any(message))
