"""The GatewayError tree: one errcode map, complete on its own; errors rebuilt from what a
worker sends keep their class and parameters; templates, old-style texts and bodies."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from zapgate import errors
from zapgate.i18n import N_

SAMPLE_PARAMS: dict[str, Any] = {
    "name": "x1",
    "address": "12@lid",
    "id": 7,
    "phone": "+5511999990003",
    "device_id": "u1-abc",
    "n": 1024,
    "email": "a@example.com",
    "host": "10.0.0.1",
    "ip": "10.0.0.1",
    "retry_after": 30,
    "limit": 10,
    "worker_url": "http://127.0.0.1:5003",
    "port": 5003,
    "session": "u1/default",
    "worker_status": 502,
    "details": [{"loc": ["body", "to"], "msg": "required"}],
    "engine": "sim",
    "feature": "pair_code",
    "content_type": "text/plain",
    "wanted": "whatsmeow",
    "key": "order-42",
    "mime": "image/png",
    "message_id": "3EB0AB12",
    "call_id": "C4F1AB12",
    "emoji": "ok",
    "detected": "application/pdf",
}


def every_class() -> list[type[errors.GatewayError]]:
    return sorted(errors.BY_ERRCODE.values(), key=lambda c: c.errcode)


def test_the_errcode_map_is_complete_in_a_fresh_interpreter() -> None:
    """Only `zapgate.errors` imported: every subclass is found by its errcode, so a worker's
    `qr_not_found` comes back as a QrNotFound whatever the web tier happened to import."""
    script = (
        "import json, sys\n"
        "from zapgate import errors\n"
        "def tree(c):\n"
        "    yield c\n"
        "    for s in c.__subclasses__():\n"
        "        yield from tree(s)\n"
        "print(json.dumps({\n"
        "    'found': {c.__name__: errors.BY_ERRCODE.get(c.errcode) is c\n"
        "              for c in tree(errors.GatewayError)},\n"
        "    'modules': sorted(m for m in sys.modules if m.startswith('zapgate.')),\n"
        "}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert all(result["found"].values()), result["found"]
    assert set(result["found"]) == {c.__name__ for c in every_class()}
    assert {"QrNotFound", "WebhookNotFound", "UrlNotAllowed", "CsrfFailed"} <= set(result["found"])
    assert not [m for m in result["modules"] if m.split(".")[1] not in {"errors", "i18n"}]


@pytest.mark.parametrize("cls", every_class(), ids=lambda c: c.errcode)
def test_from_dict_rebuilds_class_and_params(cls: type[errors.GatewayError]) -> None:
    own = cls(**SAMPLE_PARAMS)
    generic = cls(
        N_("{name} and {n} with {{braces}}"), hint=N_("see {id} {{name}}"), **SAMPLE_PARAMS
    )
    old_style = cls("a {ready-made} text", hint="a {ready-made} hint")
    for err in (own, generic, old_style):
        body = json.loads(json.dumps(err.to_dict(wire=True)))
        back = errors.from_dict(body, err.status)
        assert type(back) is cls
        assert back.params == err.params
        assert (back.template, back.hint_template) == (err.template, err.hint_template)
        assert (back.error, back.hint) == (err.error, err.hint)
        assert back.to_dict() == err.to_dict()
    assert generic.error == "x1 and 1024 with {braces}"
    assert generic.hint == "see 7 {name}"
    assert (old_style.error, old_style.hint) == ("a {ready-made} text", "a {ready-made} hint")


def test_the_public_body_is_errcode_error_hint_and_declared_fields() -> None:
    err = errors.WorkerUnreachable(
        N_("WhatsApp worker not reachable at {url} (port {port}) for session {session}: {detail}"),
        hint=N_("Start a worker on port {port}."),
        url="http://w:5003",
        worker_url="http://w:5003",
        port=5003,
        session="u1/default",
        detail="ConnectError",
    )
    assert err.to_dict() == {
        "errcode": "worker_unreachable",
        "error": "WhatsApp worker not reachable at http://w:5003 (port 5003) for session "
        "u1/default: ConnectError",
        "hint": "Start a worker on port 5003.",
        "worker_url": "http://w:5003",
        "port": 5003,
        "session": "u1/default",
    }
    assert errors.SessionNotFound(name="x1").to_dict() == {
        "errcode": "session_not_found",
        "error": "You have no session named 'x1'.",
        "hint": "Create it first with PUT /v1/sessions/{name}.",
    }


def test_an_unknown_errcode_falls_back_to_its_status_keeping_errcode_and_fields() -> None:
    body = {"errcode": "from_the_future", "error": "new {thing}", "hint": "h", "extra": 1}
    err = errors.from_dict(body, 404)
    assert isinstance(err, errors.NotFound)
    assert err.to_dict() == body
    other = errors.from_dict({"errcode": "odd", "error": "e", "hint": "h"}, 418)
    assert type(other) is errors.WorkerError
    assert other.to_dict() == {"errcode": "odd", "error": "e", "hint": "h", "worker_status": 418}
