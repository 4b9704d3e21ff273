from __future__ import annotations

from pathlib import Path

import pytest

from zapgate.domain.ids import (
    derive_client_id,
    is_valid_client_id,
    new_message_id,
    normalize_phone,
    resolve_session_dir,
    session_dir_for,
    validate_session_name,
)
from zapgate.errors import InvalidPhone, InvalidSessionName, ValidationFailed


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


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+5511999990003", "+5511999990003"),
        ("55 (11) 99999-0003", "+5511999990003"),
        ("+1 415.555.0100", "+14155550100"),
    ],
)
def test_phones(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["", "abc", "+0123456789", "+55", "+55119999900031234567", "++55"])
def test_bad_phones(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_message_ids_look_like_whatsapp() -> None:
    mid = new_message_id()
    assert mid.startswith("3EB0") and len(mid) == 20 and mid == mid.upper()
