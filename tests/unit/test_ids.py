from __future__ import annotations

from pathlib import Path

import pytest

from zapgate.config import load_settings
from zapgate.domain.ids import (
    derive_client_id,
    identity,
    is_valid_client_id,
    new_message_id,
    normalize_phone,
    normalize_recipient,
    resolve_session_dir,
    session_dir_for,
    validate_country,
    validate_session_name,
)
from zapgate.errors import (
    ConfigError,
    InvalidLid,
    InvalidPhone,
    InvalidSessionName,
    ValidationFailed,
)


@pytest.mark.parametrize("name", ["default", "a", "loja-1", "x_y", "0" * 63])
def test_good_session_names(name: str) -> None:
    assert validate_session_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "..", "../etc", "a/b", "-a", "_a", "A", "a b", "a" * 64, "ção", "a\x00", "%2e%2e"],
)
def test_bad_session_names(name: str) -> None:
    with pytest.raises(InvalidSessionName):
        validate_session_name(name)


def test_client_id_comes_from_the_user_id_and_randomness() -> None:
    a, b = derive_client_id(3), derive_client_id(3)
    assert a.startswith("u3-") and b.startswith("u3-") and a != b
    assert is_valid_client_id(a)
    assert session_dir_for(a) == f"sessions/{a}"


@pytest.mark.parametrize("bad", ["../x", "a/b", "", ".", "a" * 65, "x y"])
def test_bad_client_ids_never_make_a_dir(bad: str) -> None:
    assert not is_valid_client_id(bad)
    with pytest.raises(ValidationFailed):
        session_dir_for(bad)


@pytest.mark.parametrize("stored", ["sessions/../../etc", "/etc/passwd", "sessions", "x/../../y"])
def test_session_dirs_cannot_escape_the_data_dir(tmp_path: Path, stored: str) -> None:
    with pytest.raises(ValidationFailed):
        resolve_session_dir(tmp_path, stored)


def test_session_dir_resolves_inside(tmp_path: Path) -> None:
    assert (
        resolve_session_dir(tmp_path, "sessions/u1-abc") == (tmp_path / "sessions/u1-abc").resolve()
    )


# (input, default country, E.164 or None when refused)
PHONES = [
    # E.164, with or without a default country
    ("+5511999990003", None, "+5511999990003"),
    ("+5511999990003", "BR", "+5511999990003"),
    ("+351912345678", "BR", "+351912345678"),
    ("+1 415.555.0100", None, "+14155550100"),
    ("+55 (11) 98888-7777", None, "+5511988887777"),
    ("+55\t11 98888 7777", None, "+5511988887777"),
    # the reported defect: national formats are not international numbers
    ("(11) 98888-7777", None, None),
    ("11988887777", None, None),
    ("5511999990003", None, None),
    ("55 (11) 99999-0003", None, None),
    # ... but are read in the default country
    ("(11) 98888-7777", "BR", "+5511988887777"),
    ("11 98888-7777", "br", "+5511988887777"),
    ("(11) 3333-4444", "BR", "+551133334444"),
    ("55 (11) 99999-0003", "BR", "+5511999990003"),
    ("912 345 678", "PT", "+351912345678"),
    # Brazil's ninth digit: the old 8-digit mobile form is accepted as typed
    ("(11) 8888-7777", "BR", "+551188887777"),
    ("+55 11 8888-7777", None, "+551188887777"),
    ("(11) 98888-77", "BR", None),
    # the 00 international prefix: ambiguous without a country, that country's rules with one
    ("0055 11 99999 0003", None, None),
    ("0055 11 99999 0003", "PT", "+5511999990003"),
    ("0055 11 99999 0003", "BR", None),  # in Brazil 00 is followed by a carrier code
    ("011 55 11 99999 0003", "US", "+5511999990003"),
    # garbage, too short, too long, letters
    ("", None, None),
    ("", "BR", None),
    ("abc", "BR", None),
    ("+1-800-FLOWERS", None, None),
    ("0800 FLORES", "BR", None),
    ("++55", None, None),
    ("+0123456789", None, None),
    ("+55", None, None),
    ("+55 11 99", None, None),
    ("+55119999900031234567", None, None),
    ("551199999000312345", "BR", None),
    ("12", "BR", None),
]


@pytest.mark.parametrize(("raw", "country", "e164"), PHONES)
def test_phones(raw: str, country: str | None, e164: str | None) -> None:
    if e164 is None:
        with pytest.raises(InvalidPhone) as info:
            normalize_phone(raw, country.upper() if country else None)
        assert info.value.status == 422 and info.value.hint
    else:
        assert normalize_phone(raw, country.upper() if country else None) == e164


def test_national_number_without_country_says_how_to_fix() -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone("(11) 98888-7777")
    assert "ZAPGATE_DEFAULT_COUNTRY" in info.value.hint and "default_country" in info.value.hint


def test_country_codes() -> None:
    assert validate_country(" br ") == "BR"
    for bad in ("XX", "BRA", "", "55"):
        with pytest.raises(ValidationFailed):
            validate_country(bad)


def test_default_country_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZAPGATE_DEFAULT_COUNTRY", "br")
    assert load_settings().default_country == "BR"
    monkeypatch.setenv("ZAPGATE_DEFAULT_COUNTRY", "")
    assert load_settings().default_country is None
    monkeypatch.setenv("ZAPGATE_DEFAULT_COUNTRY", "Brasil")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "ZAPGATE_DEFAULT_COUNTRY" in info.value.error


def test_message_ids_look_like_whatsapp() -> None:
    mid = new_message_id()
    assert mid.startswith("3EB0") and len(mid) == 20 and mid == mid.upper()


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("+5511999990003", "+5511999990003"),
        (" 123456789012345@lid ", "123456789012345@lid"),
        ("5511999990003@s.whatsapp.net", "+5511999990003"),
        ("5511999990003:12@s.whatsapp.net", "+5511999990003"),
        ("5511999990003@c.us", "+5511999990003"),
    ],
)
def test_a_recipient_is_a_phone_its_jid_or_a_lid(raw: str, address: str) -> None:
    assert normalize_recipient(raw) == address


@pytest.mark.parametrize(
    "raw", ["120363000000000000@g.us", "abc@s.whatsapp.net", "5511999990003@s.whatsapp.net.x"]
)
def test_other_jids_are_not_recipients(raw: str) -> None:
    with pytest.raises(InvalidLid):
        normalize_recipient(raw)


def test_identity_names_phone_jid_and_lid() -> None:
    lid = "123456789012345@lid"
    assert identity("+5511999990003", lid) == {
        "phone": "+5511999990003",
        "jid": "5511999990003@s.whatsapp.net",
        "lid": lid,
    }
    assert identity(lid, lid) == {"phone": None, "jid": lid, "lid": lid}
    assert identity(lid, None) == {"phone": None, "jid": lid, "lid": lid}
    group = "120363000000000000@g.us"
    assert identity(group, None) == {"phone": None, "jid": group, "lid": None}
