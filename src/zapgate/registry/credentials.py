"""Password hashing (argon2) and API key material. Nothing here touches the database."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

API_KEY_PREFIX = "zg_"
# What the dashboard shows of a key: enough to tell keys apart, useless to an attacker.
DISPLAY_PREFIX_CHARS = 10
# A real key is 3 + 43 characters; anything much longer is not worth hashing.
MAX_API_KEY_CHARS = 200
# The dashboard's rule, and so every other way of setting a password (the CLI).
MIN_PASSWORD_CHARS = 8

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified against when the account has no password, so "no such user" costs as long
    # as "wrong password" and response times don't reveal which e-mails are registered.
    return _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # A key carries 256 random bits, so a fast unsalted hash is enough: it only has to
    # keep a leaked database from being a list of working keys.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
