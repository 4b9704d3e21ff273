"""The OpenAPI document tells the truth (issue 8 item 15): the API key is a security scheme,
every route names its error statuses with the one error body, and the constraints the
server enforces are in the schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from zapgate.config import Settings, Topology
from zapgate.domain.ids import MAX_DB_INT, SESSION_NAME_RE
from zapgate.web.app import create_app

ERROR_REF = "#/components/schemas/ErrorBody"
UNAUTHENTICATED = {"/healthz", "/readyz"}


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data: Path = tmp_path_factory.mktemp("openapi") / "data"
    app = create_app(Settings(engine="sim", data_dir=data), Topology.EMBEDDED)
    return app.openapi()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def error_schema(op: dict[str, Any], status: int) -> str | None:
    response = op["responses"].get(str(status))
    if response is None:
        return None
    ref: str | None = response["content"]["application/json"]["schema"].get("$ref")
    return ref


def prop(doc: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"][model]["properties"][field]
    return schema


def test_the_document_is_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1.")
    # The component names clients already generated code from are still there.
    for name in ("SessionPublic", "MessagePublic", "SendMessage", "WebhookCreate", "QrPublic"):
        assert name in doc["components"]["schemas"]


def test_the_api_key_is_a_security_scheme(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearerAuth"]["description"],
    }
    assert schemes["apiKeyAuth"]["type"] == "apiKey"
    assert schemes["apiKeyAuth"]["in"] == "header"
    assert schemes["apiKeyAuth"]["name"] == "X-Api-Key"


def test_no_route_takes_the_key_as_a_parameter(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        names = {p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"}
        assert not names & {"authorization", "x-api-key"}, (method, path)


def test_every_authenticated_route_has_the_schemes_and_a_401(doc: dict[str, Any]) -> None:
    authed = [(p, m, op) for p, m, op in operations(doc) if p not in UNAUTHENTICATED]
    assert len(authed) > 20
    for path, method, op in authed:
        assert {"bearerAuth": []} in op["security"], (method, path)
        assert {"apiKeyAuth": []} in op["security"], (method, path)
        assert error_schema(op, 401) == ERROR_REF, (method, path)
    for path in UNAUTHENTICATED:
        assert "security" not in doc["paths"][path]["get"]


def test_error_statuses_use_the_error_body(doc: dict[str, Any]) -> None:
    body = doc["components"]["schemas"]["ErrorBody"]
    assert set(body["required"]) == {"errcode", "error", "hint"}
    # FastAPI's own validation shape is never what the server answers.
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, method, op in operations(doc):
        for status in op["responses"]:
            if 400 <= int(status) < 600 and path != "/readyz":
                assert error_schema(op, int(status)) == ERROR_REF, (method, path, status)
        if op.get("parameters") or op.get("requestBody"):
            assert error_schema(op, 422) == ERROR_REF, (method, path)
        if op.get("requestBody"):
            assert error_schema(op, 413) == ERROR_REF, (method, path)
            if "application/json" in op["requestBody"]["content"]:
                assert error_schema(op, 400) == ERROR_REF, (method, path)  # invalid_json


def test_routes_with_a_path_param_answer_404_and_ids_are_ranged(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        params = [p for p in op.get("parameters", []) if p["in"] == "path"]
        if not params:
            continue
        assert error_schema(op, 404) == ERROR_REF, (method, path)
        for p in params:
            if p["schema"].get("type") == "integer":
                assert p["schema"]["minimum"] == 1
                assert p["schema"]["maximum"] == MAX_DB_INT
                assert error_schema(op, 422) == ERROR_REF, (method, path)


def test_constraints_match_what_the_server_enforces(doc: dict[str, Any]) -> None:
    name = next(
        p for p in doc["paths"]["/v1/sessions/{name}"]["get"]["parameters"] if p["name"] == "name"
    )
    assert name["schema"]["pattern"] == SESSION_NAME_RE.pattern
    assert name["schema"]["minLength"] == 1 and name["schema"]["maxLength"] == 63
    for model, field in [("PairCodeIn", "phone"), ("SimScan", "phone")]:
        phone = prop(doc, model, field)
        assert phone["minLength"] == 1 and phone["maxLength"] == 32, (model, field)
        assert phone["pattern"] == r"^[0-9+\s().-]+$", (model, field)
    to = prop(doc, "SendMessage", "to")
    assert to["minLength"] == 1 and to["maxLength"] == 40
    # The documented shape lets through every kind of address the server takes.
    for address in ("+55 11 99999-0003", "123456789012345@lid", "5511999990003:7@s.whatsapp.net"):
        assert re.fullmatch(to["pattern"], address), address
    for field in ("wa_id", "chat_lid", "phone", "jid", "lid"):
        assert prop(doc, "MessagePublic", field)["description"], field
    for model, field in [("WebhookCreate", "url"), ("SimScan", "qr")]:
        assert prop(doc, model, field)["minLength"] == 1, (model, field)
    assert prop(doc, "WebhookCreate", "url")["maxLength"] == 2000
    assert prop(doc, "WebhookCreate", "secret")["minLength"] == 16
    assert prop(doc, "WebhookCreate", "events")["items"]["enum"] == [
        "message.received",
        "message.status",
        "session.status",
        "session.qr",
        "message.sent",
        "message.reaction",
        "message.edited",
        "message.revoked",
        "poll.vote",
        "presence.update",
        "chat.read",
        "call.received",
    ]
    phones = prop(doc, "CheckIn", "phones")
    assert (phones["minItems"], phones["maxItems"]) == (1, 500)
    assert phones["items"]["maxLength"] == 32 and phones["items"]["pattern"]
    assert prop(doc, "SessionCreate", "reject_calls_message")["anyOf"][0]["maxLength"] == 1000
    assert prop(doc, "CallPublic", "from")["description"]
    assert prop(doc, "MediaIn", "type")["enum"] == [
        "image",
        "document",
        "audio",
        "video",
        "sticker",
        "voice",
    ]
    for field in ("url", "base64"):
        string = next(s for s in prop(doc, "MediaIn", field)["anyOf"] if s["type"] == "string")
        assert string["minLength"] == 1
    limit = next(
        p
        for p in doc["paths"]["/v1/sessions/{name}/messages"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 200)
