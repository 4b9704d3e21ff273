"""Translation of the API's `error` and `hint` texts. A text that is a msgid of the
catalog is translated as a whole; a few common messages that carry values (a session
name, a worker URL) are recognised by pattern and translated with their values kept.
Anything else is returned unchanged: the errcode stays the machine-readable part."""

from __future__ import annotations

import re
from collections.abc import Callable

from zapgate.i18n import DEFAULT_LANG, catalog, normalize_lang


def N_(msgid: str) -> str:
    """Marks a msgid for the catalog without translating it here."""
    return msgid


# (pattern of the English text, msgid template with the pattern's named groups)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.DOTALL), t)
    for p, t in (
        (
            r"You have no session named (?P<name>'[^']*')\.",
            N_("You have no session named {name}."),
        ),
        (
            r"Session (?P<name>'[^']*') is (?P<state>[A-Z_]+), not CONNECTED\.",
            N_("Session {name} is {state}, not CONNECTED."),
        ),
        (
            r"Session (?P<name>'[^']*') is (?P<state>[A-Z_]+): there is no QR to show\.",
            N_("Session {name} is {state}: there is no QR to show."),
        ),
        (
            r"Session (?P<name>'[^']*') is not started: there is nothing to pair\.",
            N_("Session {name} is not started: there is nothing to pair."),
        ),
        (
            r"WhatsApp worker not reachable at (?P<url>\S+) \(port (?P<port>[^)]*)\) "
            r"for session (?P<session>\S+): (?P<detail>.*)",
            N_(
                "WhatsApp worker not reachable at {url} (port {port}) for session "
                "{session}: {detail}"
            ),
        ),
        (
            r"A user with e-mail (?P<email>'[^']*') already exists\.",
            N_("A user with e-mail {email} already exists."),
        ),
        (
            r"The request body is larger than (?P<n>\d+) bytes\.",
            N_("The request body is larger than {n} bytes."),
        ),
        (
            r"No sim session is linked to (?P<phone>\+?\d+)\.",
            N_("No sim session is linked to {phone}."),
        ),
        # webhooks and the SSRF guard (events/ssrf.py, services/webhooks.py)
        (
            r"url: (?P<host>\S+) resolves to (?P<ip>\S+), a non-public address",
            N_("url: {host} resolves to {ip}, a non-public address"),
        ),
        (
            r"url: (?P<url>'.*') is not an http\(s\) URL",
            N_("url: {url} is not an http(s) URL"),
        ),
        (
            r"url: cannot resolve (?P<host>'[^']*'): (?P<detail>.*)",
            N_("url: cannot resolve {host}: {detail}"),
        ),
        (r"url: bad port in (?P<url>'.*')", N_("url: bad port in {url}")),
        (
            r"Webhook (?P<id>\d+) is disabled: (?P<reason>.*)",
            N_("Webhook {id} is disabled: {reason}"),
        ),
        (r"You have no webhook (?P<id>\d+)\.", N_("You have no webhook {id}.")),
        (
            r"You already have (?P<n>\d+) webhooks\.",
            N_("You already have {n} webhooks."),
        ),
        (
            r"events: unknown type\(s\) (?P<types>.*)",
            N_("events: unknown type(s) {types}"),
        ),
        (r"Use any of: (?P<types>.*)\.", N_("Use any of: {types}.")),
    )
)


def translate_text(text: str, lang: str | None) -> str:
    lang = normalize_lang(lang) or DEFAULT_LANG
    if lang == DEFAULT_LANG or not text:
        return text
    cat = catalog(lang)
    if text in cat.messages:
        return cat.messages[text]
    for pattern, template in _PATTERNS:
        match = pattern.fullmatch(text)
        if match is not None and template in cat.messages:
            return cat.messages[template].format(**match.groupdict())
    return text


def translator(lang: str | None) -> Callable[[str], str]:
    return lambda text: translate_text(text, lang)
