"""The shapes of what the simulated network hands out: QR strings, pairing codes and
tokens look like WhatsApp's so that code written against the sim fits the real thing."""

from __future__ import annotations

import base64
import hashlib
import secrets

# WhatsApp's pairing codes avoid characters that read alike (0/O, 1/I, U/V).
PAIR_CODE_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
PAIR_CODE_LENGTH = 8


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode("ascii")


def new_qr() -> str:
    """`2@<ref>,<noise public key>,<identity public key>,<adv secret>`, like a linked-device
    QR: a server reference then three base64 32-byte keys."""
    return f"2@{_b64(48)},{_b64(32)},{_b64(32)},{_b64(32)}"


def new_pair_code() -> str:
    return "".join(secrets.choice(PAIR_CODE_ALPHABET) for _ in range(PAIR_CODE_LENGTH))


def normalize_pair_code(code: str) -> str:
    """Accept `ABCD-1234`, `abcd 1234`: WhatsApp shows the code split in two halves."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_call_id() -> str:
    """32 upper-case hex digits, like WhatsApp's call ids."""
    return secrets.token_hex(16).upper()


def new_picture_id() -> str:
    """The id in a profile picture's URL."""
    return secrets.token_hex(16)


def lid_for(phone: str) -> str:
    """The LID of the account of `phone` (E.164): 15 digits then `@lid`, the same on every
    run, like an account's LID, which never changes."""
    digest = int.from_bytes(hashlib.sha256(f"simnet-lid:{phone}".encode()).digest()[:8], "big")
    return f"{10**14 + digest % (9 * 10**14)}@lid"


def default_push_name(phone: str) -> str:
    """The name a simulated phone shows until it sets one: `Phone 0003` for a number
    ending in 0003, as a WhatsApp user picks some name when setting up the app."""
    return f"Phone {phone[-4:]}"
