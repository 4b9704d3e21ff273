"""Translation of the API's `error` and `hint`: an error's templates are msgids of the
catalog, so translating is one lookup each plus `format` with the error's parameters. A
ready-made text (no template, no parameters) is translated when it is a msgid as a whole,
else left as it is: the errcode stays the machine-readable part."""

from __future__ import annotations

from zapgate.errors import GatewayError
from zapgate.i18n import DEFAULT_LANG, catalog, normalize_lang


def translate(err: GatewayError, lang: str | None) -> tuple[str, str]:
    """`err`'s error and hint in `lang`."""
    lang = normalize_lang(lang) or DEFAULT_LANG
    if lang == DEFAULT_LANG:
        return err.error, err.hint
    return err.texts(catalog(lang).gettext)


def translate_text(text: str, lang: str | None) -> str:
    """A text of the catalog (a label, a note) in `lang`; unknown text as it is."""
    lang = normalize_lang(lang) or DEFAULT_LANG
    if lang == DEFAULT_LANG or not text:
        return text
    return catalog(lang).gettext(text)
