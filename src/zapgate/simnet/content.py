"""What a simulated message carries beyond text and media, checked as WhatsApp's clients
and servers would: mentions, a location, contact cards (the vCard built where it is
missing, as WhatsApp clients and neonize users build it), a poll, a text's link preview,
and the hashes a poll vote carries. The shapes are `domain.content.Extras.to_dict()`'s."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from zapgate.domain.content import (
    POLL_MAX_OPTIONS,
    POLL_MIN_OPTIONS,
    POLL_OPTION_MAX_CHARS,
    POLL_QUESTION_MAX_CHARS,
    PRESENCES,
)
from zapgate.domain.ids import normalize_phone
from zapgate.domain.models import SENDABLE_MEDIA
from zapgate.errors import ValidationFailed
from zapgate.i18n import N_

MAX_CONTACTS = 50
MAX_MENTIONS = 1024
# WhatsApp carries a preview's thumbnail inside the message: a small JPEG.
MAX_THUMBNAIL_BYTES = 256 * 1024


def option_hash(option: str) -> str:
    """What a poll vote carries for a chosen option: the sha256 (hex) of its text."""
    return hashlib.sha256(option.encode()).hexdigest()


def vcard(name: str, phone: str | None, organization: str | None, email: str | None) -> str:
    """The vCard of a shared contact, with the `waid` WhatsApp links the number with."""
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{name}", f"ORG:{organization or ''};"]
    if phone is not None:
        lines.append(f"TEL;type=CELL;type=VOICE;waid={phone.lstrip('+')}:{phone}")
    if email is not None:
        lines.append(f"EMAIL;type=INTERNET:{email}")
    lines.append("END:VCARD")
    return "\n".join(lines)


def check_media_kind(kind: str) -> str:
    if kind not in SENDABLE_MEDIA:
        raise ValidationFailed(
            N_("media type {kind!r} is not one of {kinds}"),
            kind=kind[:20],
            kinds=", ".join(SENDABLE_MEDIA),
        )
    return kind


def check_presence(state: str, allowed: Sequence[str] = PRESENCES) -> str:
    if state not in allowed:
        raise ValidationFailed(
            N_("presence {state!r} is not one of {states}"),
            state=state[:20],
            states=", ".join(allowed),
        )
    return state


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _location(raw: Mapping[str, Any]) -> dict[str, Any]:
    try:
        lat, lon = float(raw["latitude"]), float(raw["longitude"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(N_("location: latitude and longitude must be numbers")) from exc
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValidationFailed(
            N_("location ({latitude}, {longitude}) is out of range"),
            hint=N_("Latitude goes from -90 to 90 and longitude from -180 to 180."),
            latitude=raw["latitude"],
            longitude=raw["longitude"],
        )
    return {
        "latitude": lat,
        "longitude": lon,
        "name": _str(raw, "name"),
        "address": _str(raw, "address"),
    }


def _contact(raw: Mapping[str, Any]) -> dict[str, Any]:
    name = str(raw.get("name") or "").strip()
    if not name:
        raise ValidationFailed(N_("contacts: every contact needs a name"))
    phone = None if raw.get("phone") is None else normalize_phone(str(raw["phone"]))
    org, email = _str(raw, "organization"), _str(raw, "email")
    card = _str(raw, "vcard") or vcard(name, phone, org, email)
    return {"name": name, "phone": phone, "organization": org, "email": email, "vcard": card}


def _poll(raw: Mapping[str, Any]) -> dict[str, Any]:
    question = str(raw.get("question") or "").strip()
    options = [str(o).strip() for o in raw.get("options") or ()]
    if not question or len(question) > POLL_QUESTION_MAX_CHARS:
        raise ValidationFailed(
            N_("poll: the question must have 1 to {max} characters"), max=POLL_QUESTION_MAX_CHARS
        )
    if not POLL_MIN_OPTIONS <= len(options) <= POLL_MAX_OPTIONS:
        raise ValidationFailed(
            N_("poll: {count} options; a poll has {min} to {max}"),
            count=len(options),
            min=POLL_MIN_OPTIONS,
            max=POLL_MAX_OPTIONS,
        )
    if any(not o or len(o) > POLL_OPTION_MAX_CHARS for o in options):
        raise ValidationFailed(
            N_("poll: every option must have 1 to {max} characters"), max=POLL_OPTION_MAX_CHARS
        )
    if len(set(options)) != len(options):
        raise ValidationFailed(N_("poll: the options must differ from each other"))
    try:
        max_selections = int(raw.get("max_selections") or 1)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(N_("poll: max_selections must be a number")) from exc
    if not 1 <= max_selections <= len(options):
        raise ValidationFailed(
            N_("poll: max_selections must be 1 to {count} (the number of options)"),
            count=len(options),
        )
    return {"question": question, "options": options, "max_selections": max_selections}


def _preview(raw: Mapping[str, Any], text: str | None) -> dict[str, Any]:
    """A link preview: only a text has one, and its URL is in the text."""
    url = str(raw.get("url") or "")
    if text is None or not url or url not in text:
        raise ValidationFailed(
            N_("preview: a link preview needs a text holding its URL"),
            hint=N_("Send the link in the text of the message."),
        )
    thumbnail = _str(raw, "thumbnail")
    if thumbnail is not None:
        try:
            size = len(base64.b64decode(thumbnail, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed(N_("preview: the thumbnail is not base64")) from exc
        if size > MAX_THUMBNAIL_BYTES:
            raise ValidationFailed(
                N_("preview: the thumbnail is larger than {max} bytes"), max=MAX_THUMBNAIL_BYTES
            )
    return {
        "url": url,
        "title": _str(raw, "title"),
        "description": _str(raw, "description"),
        "thumbnail": thumbnail,
    }


def check_extras(
    raw: Mapping[str, Any] | None, *, text: str | None, has_media: bool
) -> dict[str, Any]:
    """The extras of one message, checked and completed (vCards built), without the
    quote (the network resolves it against the chat). `{}` for a plain message."""
    if not raw:
        return {}
    out: dict[str, Any] = {}
    mentions = raw.get("mentions") or ()
    if len(mentions) > MAX_MENTIONS:
        raise ValidationFailed(N_("mentions: at most {max}"), max=MAX_MENTIONS)
    if mentions:
        out["mentions"] = [normalize_phone(str(m)) for m in mentions]
    contacts = raw.get("contacts") or ()
    if len(contacts) > MAX_CONTACTS:
        raise ValidationFailed(N_("contacts: at most {max} in one message"), max=MAX_CONTACTS)
    kinds = {
        "location": _location(raw["location"]) if raw.get("location") else None,
        "contacts": [_contact(c) for c in contacts] or None,
        "poll": _poll(raw["poll"]) if raw.get("poll") else None,
    }
    chosen = [k for k, v in kinds.items() if v is not None]
    if len(chosen) > 1 or (chosen and (has_media or text is not None)):
        raise ValidationFailed(
            N_("a message is one of: a text, a media, a location, contacts or a poll"),
            hint=N_("Send them as separate messages."),
        )
    for key in chosen:
        out[key] = kinds[key]
    if raw.get("preview"):
        out["preview"] = _preview(raw["preview"], None if has_media or chosen else text)
    return out
