"""Identifiers, names and phone numbers: validated once, here."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from zapgate.errors import InvalidPhone, InvalidSessionName, ValidationFailed
from zapgate.i18n import N_

SESSION_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_E164_RE = re.compile(r"^\+[1-9][0-9]{7,14}$")
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


def normalize_phone(raw: str) -> str:
    """Return an E.164 number. Spaces, dashes, dots and parentheses are tolerated."""
    if not isinstance(raw, str):
        raise InvalidPhone(N_("A phone number must be a string."))
    compact = re.sub(r"[\s().-]", "", raw)
    if compact.isdigit():
        compact = "+" + compact
    if not _E164_RE.fullmatch(compact):
        raise InvalidPhone(N_("{phone!r} is not a phone number in E.164 form."), phone=raw[:40])
    return compact


def new_message_id() -> str:
    """A message id shaped like the ones WhatsApp clients make: `3EB0` + 16 hex digits."""
    return "3EB0" + secrets.token_hex(8).upper()
