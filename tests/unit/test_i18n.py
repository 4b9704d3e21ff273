"""The catalogs: language choice, every dashboard text translated, API errors translated
from their templates and parameters and unknown text left alone, Babel formatting."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from zapgate import errors, i18n
from zapgate.i18n import N_
from zapgate.i18n.errors import translate, translate_text
from zapgate.i18n.reasons import state_reason

DASHBOARD = Path(i18n.__file__).parent.parent / "web" / "dashboard"
CALL = re.compile(
    r"""(?<![\w.])(?:page\.)?_\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)"""
)


def dashboard_msgids() -> set[str]:
    found: set[str] = set()
    for path in DASHBOARD.rglob("*"):
        if path.suffix in {".html", ".py"}:
            for m in CALL.finditer(path.read_text()):
                found.add(m.group(1) if m.group(1) is not None else m.group(2))
    return found


@pytest.mark.parametrize(
    ("user", "accept", "default", "expected"),
    [
        ("pt_BR", "en-US,en", "en", "pt_BR"),  # the user's own setting first
        (None, "pt-BR,pt;q=0.9,en;q=0.8", "en", "pt_BR"),
        (None, "fr-FR,en;q=0.5", "pt_BR", "en"),  # first supported one
        (None, "en;q=0.2,pt;q=0.9", "en", "pt_BR"),  # q-values count
        (None, "de, fr", "pt-BR", "pt_BR"),  # else ZAPGATE_LANG
        (None, None, "xx", "en"),
        ("pt-PT", None, "en", "pt_BR"),
    ],
)
def test_choose_lang(user: str | None, accept: str | None, default: str, expected: str) -> None:
    assert i18n.choose_lang(user, accept, default) == expected


def test_every_dashboard_text_is_translated() -> None:
    ids = dashboard_msgids()
    assert len(ids) > 100  # the extraction works
    pt = i18n.catalog("pt_BR")
    missing = sorted(i for i in ids if i not in pt.messages)
    assert not missing, missing


def test_default_templates_and_hints_are_translated() -> None:
    pt = i18n.catalog("pt_BR")
    classes = set(errors.BY_ERRCODE.values())
    assert classes == {
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.GatewayError)
    }
    texts = {c.default_hint for c in classes} | {c.template for c in classes}
    missing = sorted(texts - set(pt.messages))
    assert not missing, missing
    for msgid in texts:
        assert set(re.findall(r"\{(\w+)[!}]", pt.messages[msgid])) == set(
            re.findall(r"\{(\w+)[!}]", msgid)
        ), msgid


def test_api_error_texts() -> None:
    no_key = errors.Unauthorized(N_("No API key was sent."))
    assert translate(no_key, "pt_BR")[0] == "Nenhuma chave de API foi enviada."
    assert translate(no_key, "en")[0] == "No API key was sent."
    missing = errors.SessionNotFound(name="x1")
    assert missing.error == "You have no session named 'x1'."
    assert translate(missing, "pt_BR") == (
        "Você não tem uma sessão chamada 'x1'.",
        "Crie-a antes com PUT /v1/sessions/{name}.",
    )
    unreachable = errors.WorkerUnreachable(
        N_("WhatsApp worker not reachable at {url} (port {port}) for session {session}: {detail}"),
        url="http://10.0.0.5:5003",
        port=5003,
        session="u3/default",
        detail="connection refused",
    )
    assert translate(unreachable, "pt_BR")[0] == (
        "Servidor do WhatsApp inacessível em http://10.0.0.5:5003 (porta 5003) para a sessão "
        "u3/default: connection refused"
    )
    odd = errors.NotFound("something nobody translated {name}")
    assert translate(odd, "pt_BR")[0] == odd.error == "something nobody translated {name}"
    assert translate_text("No API key was sent.", "pt_BR") == "Nenhuma chave de API foi enviada."
    assert translate_text("", "pt_BR") == ""


def test_a_parametrized_error_is_translated_without_any_pattern() -> None:
    """The values stay as they were given (English, an id, a reason) while the template
    around them is translated: nothing is re-extracted from the English text."""
    err = errors.ValidationFailed(
        N_("Webhook {id} is disabled: {reason}"),
        hint=N_("Create it again once the receiver works."),
        id=7,
        reason="it answered {410}",
    )
    assert err.error == "Webhook 7 is disabled: it answered {410}"
    assert translate(err, "pt_BR") == (
        "O webhook 7 está desativado: it answered {410}",
        "Crie-o de novo quando o receptor estiver funcionando.",
    )
    assert translate(err, "en") == (err.error, err.hint)


def test_formatting_per_locale() -> None:
    when = datetime(2024, 3, 5, 14, 7, tzinfo=UTC)
    assert i18n.format_datetime(when, "pt_BR", "America/Sao_Paulo").startswith("05/03/2024")
    assert "11:07" in i18n.format_datetime(when, "pt_BR", "America/Sao_Paulo")
    assert i18n.format_datetime(when, "en", "UTC").startswith("3/5/24")
    assert i18n.format_number(1234567.5, "pt_BR") == "1.234.567,5"
    assert i18n.format_number(1234567.5, "en") == "1,234,567.5"
    ago = i18n.format_ago(when - timedelta(minutes=5), "pt_BR", now=when)
    assert ago == "há 5 minutos"
    assert i18n.format_datetime(when, "en", "Not/AZone")  # unknown zone: UTC, no crash


@pytest.mark.parametrize(
    ("phone", "shown"),
    [
        ("+5511999990003", "+55 11 99999-0003"),
        ("+551133334444", "+55 11 3333-4444"),
        ("+14155550100", "+1 415 555 0100"),
        ("+351912345678", "+351912345678"),
        (None, ""),
        ("weird", "weird"),
    ],
)
def test_format_phone(phone: str | None, shown: str) -> None:
    assert i18n.format_phone(phone) == shown


@pytest.mark.parametrize(
    ("reason", "lang", "shown"),
    [
        (
            "cannot reach web.whatsapp.com:443: Connection refused",
            "pt_BR",
            "não foi possível alcançar web.whatsapp.com:443: Connection refused",
        ),
        (
            "cannot reach proxy 127.0.0.1:9: timed out after 5s",
            "pt_BR",
            "não foi possível alcançar o proxy 127.0.0.1:9: timed out after 5s",
        ),
        ("qr_timeout", "pt_BR", "ninguém escaneou o QR code a tempo"),
        ("qr_timeout", "en", "nobody scanned the QR code in time"),
        ("connection lost; reconnecting", "pt_BR", "a conexão caiu; reconectando"),
        (
            "cannot reach web.whatsapp.com:443: refused (attempt 14, next in 60s)",
            "pt_BR",
            "não foi possível alcançar web.whatsapp.com:443: refused (tentativa 14, próxima em 60 s)",
        ),
        (
            "connection failed: the engine process was killed by SIGKILL",
            "pt_BR",
            "o processo do WhatsApp terminou (was killed by SIGKILL); reconectando",
        ),
        (
            "paired, but the connection after pairing did not come",
            "pt_BR",
            "vinculado, mas a conexão depois do vínculo não veio; reconectando",
        ),
        ("something new from an engine", "pt_BR", "something new from an engine"),
        (None, "pt_BR", ""),
    ],
)
def test_state_reason(reason: str | None, lang: str, shown: str) -> None:
    assert state_reason(reason, lang) == shown
