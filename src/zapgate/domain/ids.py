"""Identifiers, names and phone numbers: validated once, here."""

from __future__ import annotations

import functools
import re
import secrets
from pathlib import Path

import phonenumbers

from zapgate.errors import InvalidLid, InvalidPhone, InvalidSessionName, ValidationFailed
from zapgate.i18n import N_

SESSION_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# What a person may type around the digits of a phone number.
_PHONE_SEPARATORS_RE = re.compile(r"[\s().-]")
_PHONE_CHARS_RE = re.compile(r"^\+?[0-9]{1,17}$")
# Brazil's ninth digit: mobiles got a leading 9 (2012-2016). A mobile written the old way,
# 8 digits after the 2-digit area code and starting with 6-9, is accepted as typed.
_BR_OLD_MOBILE_RE = re.compile(r"^[1-9][1-9][6-9][0-9]{7}$")
# A LID, WhatsApp's privacy id of an account: digits, then `@lid` (never a device suffix here).
LID_SUFFIX = "@lid"
_LID_RE = re.compile(r"^[0-9]{1,20}@lid$")
# A phone's JID as WhatsApp clients write it, with an optional device (`:12`).
_PHONE_JID_RE = re.compile(r"([0-9]{1,20})(?::[0-9]{1,3})?@(?:s\.whatsapp\.net|c\.us)")
# Every numeric id and cursor is a 64-bit signed integer in both databases: anything larger
# is refused at the edge (a 422), never handed to SQL (an overflow there was a 500).
MAX_DB_INT = 2**63 - 1


def validate_session_name(name: str) -> str:
    if not SESSION_NAME_RE.fullmatch(name):
        raise InvalidSessionName(name=name[:80])
    return name


def parse_cursor(text: str) -> int | None:
    """A cursor or id sent back by a client (`before`, `Last-Event-ID`): decimal digits
    within 64 bits, else None."""
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_DB_INT else None


def derive_client_id(user_id: int) -> str:
    """A client id made of the user id and server-side randomness, never user input."""
    return f"u{int(user_id)}-{secrets.token_hex(6)}"


def is_valid_client_id(client_id: str) -> bool:
    return bool(CLIENT_ID_RE.fullmatch(client_id))


def session_dir_for(client_id: str) -> str:
    """The session directory, relative to a worker's data dir."""
    if not is_valid_client_id(client_id):
        raise ValidationFailed(
            N_("{client_id!r} is not a valid client id."), client_id=client_id[:80]
        )
    return f"sessions/{client_id}"


def resolve_session_dir(data_dir: Path, session_dir: str) -> Path:
    """Resolve a stored session dir under `data_dir`, refusing anything that escapes it."""
    base = (data_dir / "sessions").resolve()
    target = (data_dir / session_dir).resolve()
    if target == base or base not in target.parents:
        raise ValidationFailed(
            N_("session dir {session_dir!r} is outside {base}"),
            hint=N_("Session dirs are derived by zapgate; do not edit them by hand."),
            session_dir=session_dir[:120],
            base=str(base),
        )
    return target


def validate_country(code: str) -> str:
    """A default country for national phone numbers: an ISO 3166 alpha-2 code that
    `phonenumbers` knows (`BR`, `PT`, `US`), upper-cased."""
    value = code.strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed(
            N_("default_country: {code!r} is not a country code"),
            hint=N_("Use a two-letter ISO 3166 code such as BR, PT or US."),
            code=code[:20],
        )
    return value


def _is_old_br_mobile(number: phonenumbers.PhoneNumber) -> bool:
    """A Brazilian mobile written without the ninth digit ((11) 8888-7777): valid once the 9
    is put back after the area code."""
    national = str(number.national_number)
    if number.country_code != 55 or not _BR_OLD_MOBILE_RE.fullmatch(national):
        return False
    with_nine = phonenumbers.PhoneNumber(
        country_code=55, national_number=int(national[:2] + "9" + national[2:])
    )
    return phonenumbers.number_type(with_nine) == phonenumbers.PhoneNumberType.MOBILE


def normalize_phone(raw: str, default_country: str | None = None) -> str:
    """The one parser of phone numbers: E.164 out, or InvalidPhone (422).

    Spaces, dashes, dots and parentheses are tolerated. A number with `+` is international
    and must have a real country code and a possible length. Anything else (national
    formats, `00` or `011` prefixes, bare digits) is ambiguous: `(11) 98888-7777` is not
    `+11988887777`. It is refused unless `default_country` names the country to read it
    in; then `phonenumbers` parses it by that country's dialing rules and it must be a
    valid number there. Brazilian mobiles written without the ninth digit are accepted as
    typed (WhatsApp accounts of pre-2012 numbers often have that JID)."""
    if not isinstance(raw, str):
        raise InvalidPhone(N_("A phone number must be a string."))
    return _normalize_phone(raw, default_country)


# A send's recipient is read several times on its way (API, queue, worker, engine), and
# a campaign writes to the same numbers again and again: `phonenumbers` costs some 70 µs
# a parse. Refusals raise, so they are never cached.
@functools.lru_cache(maxsize=8192)
def _normalize_phone(raw: str, default_country: str | None) -> str:
    compact = _PHONE_SEPARATORS_RE.sub("", raw)
    if not _PHONE_CHARS_RE.fullmatch(compact):
        raise InvalidPhone(N_("{phone!r} is not a phone number."), phone=raw[:40])
    international = compact.startswith("+")
    if not international and default_country is None:
        raise InvalidPhone(
            N_("{phone!r} has no country code: it could be a number of any country."),
            hint=N_(
                "Write it in E.164: a '+', the country code and the number, e.g. "
                "+5511999990003. For national numbers, set the session's default_country "
                "(PUT /v1/sessions/{{name}}) or ZAPGATE_DEFAULT_COUNTRY."
            ),
            phone=raw[:40],
        )
    try:
        number = phonenumbers.parse(compact, None if international else default_country)
    except phonenumbers.NumberParseException:
        number = None
    if international:
        ok = number is not None and phonenumbers.is_possible_number(number)
    else:
        ok = number is not None and (
            phonenumbers.is_valid_number(number) or _is_old_br_mobile(number)
        )
    if number is None or not ok:
        if international:
            raise InvalidPhone(N_("{phone!r} is not a phone number in E.164 form."), phone=raw[:40])
        raise InvalidPhone(
            N_("{phone!r} is not a valid phone number in {country}."),
            phone=raw[:40],
            country=default_country,
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_lid(address: str) -> bool:
    """Whether `address` is a LID as zapgate writes it: `<digits>@lid`."""
    return bool(_LID_RE.fullmatch(address))


def normalize_recipient(raw: str, default_country: str | None = None) -> str:
    """Whom a message goes to: an E.164 phone (read as `normalize_phone` does; a phone's
    JID, `<digits>@s.whatsapp.net` or `<digits>@c.us`, device suffix allowed, is that
    phone), or a LID (`<digits>@lid`, surrounding spaces dropped); anything else with an
    `@` is refused with InvalidLid."""
    if not isinstance(raw, str) or "@" not in raw:
        return normalize_phone(raw, default_country)
    address = raw.strip()
    if is_lid(address):
        return address
    phone_jid = _PHONE_JID_RE.fullmatch(address)
    if phone_jid is None:
        raise InvalidLid(address=raw[:40])
    return normalize_phone("+" + phone_jid.group(1))


def identity(address: str, lid: str | None) -> dict[str, str | None]:
    """How messages, chats and events name the other side besides `chat`: `phone` (E.164,
    whenever known), `jid` (WhatsApp's JID: `<digits>@s.whatsapp.net` for a phone, the LID
    when no phone is known, a group's own) and `lid` (when known)."""
    phone = address if address.startswith("+") else None
    jid = address[1:] + "@s.whatsapp.net" if phone is not None else address
    return {"phone": phone, "jid": jid, "lid": lid if lid is not None else _lid_or_none(address)}


def _lid_or_none(address: str) -> str | None:
    return address if is_lid(address) else None


def new_message_id() -> str:
    """A message id shaped like the ones WhatsApp clients make: `3EB0` + 16 hex digits."""
    return "3EB0" + secrets.token_hex(8).upper()
