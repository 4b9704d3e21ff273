"""What counts as one emoji for a reaction: pictographs and symbols (Unicode's `So`),
with the joiners, variation selectors, skin tones, tags and keycaps that make a single
emoji out of several code points. Letters, digits alone and punctuation are not."""

from __future__ import annotations

import unicodedata

# Joined into one emoji: zero-width joiner, variation selectors, the keycap mark.
_JOINERS = frozenset("\u200d\ufe0e\ufe0f\u20e3")
# WhatsApp's longest emoji (family sequences) are well under this many code points.
MAX_CODE_POINTS = 16


def _part(char: str) -> bool:
    code = ord(char)
    return (
        char in _JOINERS
        or unicodedata.category(char) in ("So", "Sk")
        or 0x1F3FB <= code <= 0x1F3FF  # skin tones
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
    )


def is_emoji(text: str) -> bool:
    """True for one emoji (a keycap such as 1️⃣ included); False for "" or text."""
    if not text or len(text) > MAX_CODE_POINTS:
        return False
    if text[0] in "0123456789#*" and text.endswith("\u20e3"):
        return all(c in _JOINERS for c in text[1:])
    if not any(unicodedata.category(c) == "So" for c in text):
        return False
    return all(_part(c) for c in text)
