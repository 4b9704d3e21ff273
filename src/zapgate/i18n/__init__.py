"""Message catalogs (English and Brazilian Portuguese) for the dashboard and the API's
error messages, language negotiation, and locale-aware formatting through Babel.

The catalogs are gettext `.po` files read with Babel when first used: English is the
source language (msgids are the English text), so only `pt_BR` carries translations.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime as _babel_datetime
from babel.dates import format_timedelta as _babel_timedelta
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

logger = logging.getLogger(__name__)

DEFAULT_LANG = "en"
SUPPORTED: tuple[str, ...] = ("en", "pt_BR")
LANG_NAMES: dict[str, str] = {"en": "English", "pt_BR": "Português (Brasil)"}

_LANG_TAG = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")


def N_(msgid: str) -> str:
    """Marks a msgid for the catalog without translating it here."""
    return msgid


def normalize_lang(value: str | None) -> str | None:
    """Map a language tag ("pt-BR", "pt_br", "pt", "en-US") to a supported language, or
    None. Any Portuguese goes to pt_BR: it is the only Portuguese we have."""
    if not value:
        return None
    tag = value.strip()
    if not _LANG_TAG.match(tag):
        return None
    primary = re.split(r"[-_]", tag)[0].lower()
    if primary == "pt":
        return "pt_BR"
    if primary == "en":
        return "en"
    return None


def negotiate(accept_language: str | None) -> str | None:
    """The best supported language of an Accept-Language header (q-values honoured)."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if q <= 0:
            continue
        ranked.append((-q, index, tag.strip()))
    for _, _, tag in sorted(ranked):
        lang = normalize_lang(tag)
        if lang is not None:
            return lang
    return None


def choose_lang(user_lang: str | None, accept_language: str | None, default: str | None) -> str:
    """The user's own setting, else the browser's Accept-Language, else ZAPGATE_LANG."""
    return (
        normalize_lang(user_lang)
        or negotiate(accept_language)
        or normalize_lang(default)
        or DEFAULT_LANG
    )


@dataclass(frozen=True)
class Catalog:
    lang: str
    messages: dict[str, str] = field(default_factory=dict)
    plurals: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.lang)

    def gettext(self, msgid: str) -> str:
        return self.messages.get(msgid) or msgid

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        forms = self.plurals.get(singular)
        if forms:
            index = 0 if n == 1 else 1  # both languages: one form for 1, another for the rest
            chosen = forms[min(index, len(forms) - 1)]
            if chosen:
                return chosen
        return singular if n == 1 else plural

    def __contains__(self, msgid: object) -> bool:
        return msgid in self.messages or msgid in self.plurals


@cache
def catalog(lang: str) -> Catalog:
    """The catalog of a supported language (English is the identity)."""
    lang = normalize_lang(lang) or DEFAULT_LANG
    if lang == DEFAULT_LANG:
        return Catalog(lang)
    path = resources.files("zapgate.i18n") / "locale" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        po = read_po(fh, locale=lang)
    messages: dict[str, str] = {}
    plurals: dict[str, tuple[str, ...]] = {}
    for message in po:
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, tuple):
            if isinstance(message.string, tuple) and all(message.string):
                plurals[str(message.id[0])] = tuple(str(s) for s in message.string)
        elif message.string:
            messages[str(message.id)] = str(message.string)
    logger.debug("i18n: loaded %s messages for %s", len(messages), lang)
    return Catalog(lang, messages, plurals)


def gettext(lang: str, msgid: str) -> str:
    return catalog(lang).gettext(msgid)


# -- formatting --------------------------------------------------------------------------------


@cache
def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("i18n: unknown time zone %r; showing UTC", name)
        return UTC


def format_datetime(value: datetime | None, lang: str, tz: str = "UTC") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(_babel_datetime(value, "short", tzinfo=zone(tz), locale=Locale.parse(lang)))


def format_time(value: datetime | None, lang: str, tz: str = "UTC") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(_babel_datetime(value, "HH:mm", tzinfo=zone(tz), locale=Locale.parse(lang)))


def zone_label(value: datetime, tz: str) -> str:
    """The short name of `tz` at `value` ("UTC", "-03", "CET"), shown beside a time."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone(tz)).tzname() or tz


def format_ago(value: datetime | None, lang: str, now: datetime | None = None) -> str:
    """ "5 minutes ago" / "há 5 minutos"."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - (now or datetime.now(UTC))
    return str(
        _babel_timedelta(delta, add_direction=True, threshold=0.9, locale=Locale.parse(lang))
    )


def format_number(value: float, lang: str) -> str:
    return str(format_decimal(value, locale=Locale.parse(lang)))


def format_phone(phone: str | None) -> str:
    """A readable E.164 number: Brazilian ones as "+55 11 99999-0003", North American
    ones as "+1 415 555 0100", others as they are."""
    if not phone:
        return ""
    digits = phone.lstrip("+")
    if not digits.isdigit():
        return phone
    if digits.startswith("55") and len(digits) in (12, 13):
        area, local = digits[2:4], digits[4:]
        return f"+55 {area} {local[:-4]}-{local[-4:]}"
    if digits.startswith("1") and len(digits) == 11:
        return f"+1 {digits[1:4]} {digits[4:7]} {digits[7:]}"
    # Country codes are 1-3 digits and national formats vary: don't guess.
    return "+" + digits
