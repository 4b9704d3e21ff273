"""A session's state_reason in a language. Engines record a reason as a short code
(`qr_timeout`) or an English sentence naming a host (`cannot reach web.whatsapp.com:443:
Connection refused`); the known shapes are catalog msgids, anything else stays as it is."""

from __future__ import annotations

import re

from zapgate.i18n import DEFAULT_LANG, N_, catalog, normalize_lang

_CODES: dict[str, str] = {
    "qr_timeout": N_("nobody scanned the QR code in time"),
    "pair_code_timeout": N_("the pairing code was not entered in time"),
    "worker_shutdown": N_("the server was shut down"),
    "deleted": N_("the session was deleted"),
    "connection closed": N_("the connection was closed"),
    "connection lost; reconnecting": N_("the connection was lost; reconnecting"),
    "keep-alive timed out; reconnecting": N_("WhatsApp stopped answering; reconnecting"),
    "paired, but the connection after pairing did not come": N_(
        "linked, but the connection after linking did not come; reconnecting"
    ),
}
_CANNOT_REACH = re.compile(r"cannot reach (proxy )?(\S+): (.+)", re.DOTALL)
_REACH_HOST = N_("cannot reach {host}: {detail}")
_REACH_PROXY = N_("cannot reach the proxy {host}: {detail}")
# The whatsmeow engine's retries: "<reason> (attempt N, next in Ts)".
_ATTEMPT = re.compile(r"(.+) \(attempt (\d+), next in (\d+)s\)", re.DOTALL)
_ATTEMPT_TEXT = N_("{reason} (attempt {attempt}, next in {seconds} s)")
_HOST_DIED = re.compile(r"connection failed: the engine process (.+)", re.DOTALL)
_HOST_DIED_TEXT = N_("the WhatsApp engine process ended ({detail}); reconnecting")


def state_reason(reason: str | None, lang: str | None) -> str:
    """`reason` as a person reads it, in `lang`; "" for none."""
    if not reason:
        return ""
    lang = normalize_lang(lang) or DEFAULT_LANG
    gettext = catalog(lang).gettext if lang != DEFAULT_LANG else (lambda text: text)
    if match := _ATTEMPT.fullmatch(reason):
        return gettext(_ATTEMPT_TEXT).format(
            reason=state_reason(match[1], lang), attempt=match[2], seconds=match[3]
        )
    if reason in _CODES:
        return gettext(_CODES[reason])
    if match := _HOST_DIED.fullmatch(reason):
        return gettext(_HOST_DIED_TEXT).format(detail=match[1])
    if match := _CANNOT_REACH.fullmatch(reason):
        template = _REACH_PROXY if match[1] else _REACH_HOST
        return gettext(template).format(host=match[2], detail=match[3])
    return reason
