"""Bad input always gets the documented 4xx in the {errcode, error, hint} shape."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Server


def assert_error(r: httpx.Response, status: int, errcode: str | None = None) -> dict[str, str]:
    assert r.status_code == status, (r.status_code, r.text)
    body: dict[str, str] = r.json()
    assert set(body) >= {"errcode", "error", "hint"}, body
    assert body["error"] and body["hint"]
    if errcode is not None:
        assert body["errcode"] == errcode, body
    assert "Traceback" not in r.text
    return body


def test_no_key_is_401(server: Server) -> None:
    r = httpx.get(server.proc.url + "/v1/sessions")
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Bearer zg_nope"},
        {"X-Api-Key": "nope"},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
def test_bad_keys_are_401(server: Server, header: dict[str, str]) -> None:
    assert_error(httpx.get(server.proc.url + "/v1/sessions", headers=header), 401)


def test_x_api_key_header_works(server: Server) -> None:
    r = httpx.get(server.proc.url + "/v1/sessions", headers={"X-Api-Key": server.alice.key})
    assert r.status_code == 200


def test_unknown_session_is_404(server: Server) -> None:
    assert_error(server.alice.get("/v1/sessions/nope"), 404, "session_not_found")
    assert_error(server.alice.post("/v1/sessions/nope/start"), 404, "session_not_found")


def test_unknown_route_is_404_in_shape(server: Server) -> None:
    assert_error(server.alice.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_in_shape(server: Server) -> None:
    assert_error(server.alice.request("PATCH", "/v1/sessions/x"), 405)


@pytest.mark.parametrize("name", ["A", "-x", "a" * 64, "ação", "a%20b", "%2e%2e"])
def test_bad_session_names_are_422(server: Server, name: str) -> None:
    assert_error(server.alice.put(f"/v1/sessions/{name}"), 422, "invalid_session_name")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/sessions/..%2F..%2Fetc",
        "/v1/sessions/../../etc/passwd",
        "/v1/sessions/a%2Fb",
        "/v1/sessions/..",
        "/v1/sessions/%2e%2e",
    ],
)
def test_traversal_looking_paths_never_reach_a_session(server: Server, path: str) -> None:
    r = httpx.put(server.proc.url + path, headers={"X-Api-Key": server.alice.key})
    assert r.status_code in {404, 422}, r.text
    assert_error(r, r.status_code)


def test_malformed_json_is_400(server: Server) -> None:
    r = server.alice.put(
        "/v1/sessions/js", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400, "invalid_json")


def test_wrong_types_are_422(server: Server) -> None:
    r = server.alice.put("/v1/sessions/types", json={"start": "maybe"})
    body = assert_error(r, 422, "validation_error")
    assert "start" in body["error"]
    assert_error(server.alice.put("/v1/sessions/types", json=[1, 2]), 422)
    assert_error(server.alice.put("/v1/sessions/types", json={"bogus": 1}), 422)


def test_unknown_engine_is_422(server: Server) -> None:
    body = assert_error(server.alice.put("/v1/sessions/eng", json={"engine": "baileys"}), 422)
    assert "sim" in body["hint"]


def test_huge_body_is_413(server: Server) -> None:
    r = server.alice.put(
        "/v1/sessions/big",
        content=b"{" + b" " * 200_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_error(r, 413, "payload_too_large")


def test_huge_chunked_body_is_413(server: Server) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b" " * 4096

    r = server.alice.put(
        "/v1/sessions/big", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("phone", ["123", "abc", "+0011", "", "+55 11 99"])
def test_bad_phones_are_422(server: Server, phone: str) -> None:
    assert server.alice.put("/v1/sessions/phones", json={"start": False}).status_code in {200, 201}
    r = server.alice.post("/v1/sessions/phones/pair-code", json={"phone": phone})
    assert_error(r, 422, "invalid_phone")
    r = server.alice.post("/v1/sessions/phones/messages", json={"to": phone, "text": "x"})
    assert_error(r, 422, "invalid_phone")


def test_sending_before_connected_is_queued_not_refused(server: Server) -> None:
    server.alice.put("/v1/sessions/early", json={"start": False})
    r = server.alice.post("/v1/sessions/early/messages", json={"to": "+5511999990001", "text": "x"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued" and body["scheduled_at"]
    items = server.alice.get("/v1/sessions/early/messages").json()["items"]
    assert any(m["id"] == body["id"] and m["status"] == "queued" for m in items)
    assert_error(server.alice.get("/v1/sessions/early/qr"), 409, "wrong_state")
    r = server.alice.post("/v1/sessions/early/pair-code", json={"phone": "+5511999990001"})
    assert_error(r, 409, "wrong_state")


def test_empty_text_is_422(server: Server) -> None:
    server.alice.put("/v1/sessions/early", json={"start": False})
    r = server.alice.post("/v1/sessions/early/messages", json={"to": "+5511999990001", "text": " "})
    assert_error(r, 422)


def test_bad_history_cursor_is_422(server: Server) -> None:
    server.alice.put("/v1/sessions/early", json={"start": False})
    assert_error(server.alice.get("/v1/sessions/early/messages?before=abc"), 422)
    assert_error(server.alice.get("/v1/sessions/early/messages?limit=0"), 422)
    assert_error(server.alice.get("/v1/sessions/early/messages?direction=up"), 422)


def test_unknown_qr_scan_is_a_clear_4xx(server: Server) -> None:
    server.alice.put("/v1/sessions/early", json={"start": False})
    r = server.alice.post("/v1/sim/scan", json={"qr": "2@bogus", "phone": "+5511999990009"})
    assert 400 <= r.status_code < 500
    assert_error(r, r.status_code)


def test_users_never_see_each_others_sessions(server: Server) -> None:
    alice, bob = server.alice, server.bob
    assert alice.put("/v1/sessions/private", json={"start": False}).status_code in {200, 201}
    assert_error(bob.get("/v1/sessions/private"), 404, "session_not_found")
    for method, path in [
        ("POST", "/start"),
        ("POST", "/stop"),
        ("POST", "/logout"),
        ("GET", "/qr"),
        ("GET", "/messages"),
        ("DELETE", ""),
    ]:
        r = bob.request(method, f"/v1/sessions/private{path}")
        assert_error(r, 404, "session_not_found")
    assert "private" not in [s["name"] for s in bob.get("/v1/sessions").json()["items"]]
    # Bob's own session of the same name is a different session.
    r = bob.put("/v1/sessions/private", json={"start": False})
    assert r.status_code == 201
    assert r.json()["client_id"] != alice.get("/v1/sessions/private").json()["client_id"]
    assert alice.get("/v1/sessions/private").status_code == 200


def test_admin_pages_need_an_admin(server: Server) -> None:
    server.alice.put("/v1/sessions/seen-by-admin", json={"start": False})
    assert_error(server.alice.get("/v1/admin/sessions"), 403, "forbidden")
    assert_error(server.alice.get("/v1/admin/workers"), 403, "forbidden")
    r = server.admin.get("/v1/admin/sessions")
    assert r.status_code == 200
    assert {s["user_id"] for s in r.json()["items"]} >= {server.alice_id}
    w = server.admin.get("/v1/admin/workers").json()
    assert w["topology"] == "embedded" and w["items"][0]["reachable"] is True


def test_health_ready_and_openapi(server: Server) -> None:
    base = server.proc.url
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(base + "/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    spec = httpx.get(base + "/openapi.json").json()
    assert "/v1/sessions/{name}/qr" in spec["paths"]


def test_lifecycle_endpoints_are_idempotent(server: Server) -> None:
    api = server.alice
    api.put("/v1/sessions/idem", json={"start": False})
    for _ in range(2):
        assert api.post("/v1/sessions/idem/stop").json()["state"] == "STOPPED"
    for _ in range(2):
        r = api.post("/v1/sessions/idem/start")
        assert r.status_code == 200 and r.json()["state"] in {"STARTING", "SCAN_QR"}
    for _ in range(2):
        assert api.post("/v1/sessions/idem/stop").json()["state"] == "STOPPED"
    assert api.post("/v1/sessions/idem/logout").status_code == 200
    assert api.delete("/v1/sessions/idem").status_code == 204
    assert_error(api.get("/v1/sessions/idem"), 404)


def test_idempotency_key_returns_the_first_send(server: Server) -> None:
    api = server.alice
    api.put("/v1/sessions/early", json={"start": False})
    h = {"Idempotency-Key": "k-1"}
    first = api.post(
        "/v1/sessions/early/messages", json={"to": "+5511999990001", "text": "x"}, headers=h
    )
    assert first.status_code == 202
    again = api.post(
        "/v1/sessions/early/messages", json={"to": "+5511999990001", "text": "x"}, headers=h
    )
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = api.post(
        "/v1/sessions/early/messages",
        json={"to": "+5511999990001", "text": "x"},
        headers={"Idempotency-Key": "k-2"},
    )
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    assert_error(
        api.post(
            "/v1/sessions/early/messages",
            json={"to": "+5511999990001", "text": "x"},
            headers={"Idempotency-Key": "k" * 201},
        ),
        422,
    )


def test_bad_send_rates_are_422(server: Server) -> None:
    for rate in ["fast", "0/1s", "5/0s", "-1/2s"]:
        r = server.alice.put("/v1/sessions/early", json={"start": False, "send_rate": rate})
        assert_error(r, 422, "validation_error")
    r = server.alice.put("/v1/sessions/early", json={"start": False, "send_rate": "10/1s"})
    assert r.status_code == 200 and r.json()["send_rate"] == "10/1s"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://[::1]/x",
        "http://0.0.0.0/x",
        "http://[::ffff:127.0.0.1]/x",
    ],
)
def test_webhooks_to_private_addresses_are_refused(server: Server, url: str) -> None:
    body = assert_error(
        server.alice.post("/v1/webhooks", json={"url": url}), 422, "url_not_allowed"
    )
    assert "ZAPGATE_ALLOW_PRIVATE_URLS" in body["hint"]


HUGE = [str(2**63), str(2**64 + 1), "9" * 40, "-1", "0"]


@pytest.mark.parametrize("value", HUGE)
def test_numeric_path_ids_are_range_checked(server: Server, value: str) -> None:
    """Issue 8.4: an id beyond 64 bits reached SQL and was a 500 with a traceback."""
    for method, path in (
        ("GET", f"/v1/webhooks/{value}"),
        ("DELETE", f"/v1/webhooks/{value}"),
        ("POST", f"/v1/webhooks/{value}/ping"),
        ("GET", f"/v1/webhooks/{value}/deliveries"),
    ):
        assert_error(server.alice.request(method, path), 422)
    assert "Traceback" not in server.proc.log()


@pytest.mark.parametrize("value", [str(2**63), "9" * 40, "\uff11\uff12\uff13", "12a"])
def test_cursors_are_range_checked(server: Server, value: str) -> None:
    assert server.alice.put("/v1/sessions/nums").status_code in (200, 201)
    assert_error(server.alice.get("/v1/sessions/nums/messages", params={"before": value}), 422)
    if value.isascii():  # a header carries Latin-1 only
        r = server.alice.get("/v1/sessions/nums/events", headers={"Last-Event-ID": value})
        assert_error(r, 422)
    if value.isascii() and value.isdigit():
        assert_error(server.alice.get("/v1/sessions/nums/events", params={"after": value}), 422)
    assert "Traceback" not in server.proc.log()


def test_largest_64_bit_cursor_is_fine(server: Server) -> None:
    assert server.alice.put("/v1/sessions/nums").status_code in (200, 201)
    r = server.alice.get("/v1/sessions/nums/messages", params={"before": str(2**63 - 1)})
    assert r.status_code == 200 and r.json()["items"] == []
    assert server.alice.get(f"/v1/webhooks/{2**63 - 1}").status_code == 404


def test_api_keys_in_a_query_string_never_reach_the_log(server: Server) -> None:
    """Issue 8.8: refused, but uvicorn's access log printed the full URL."""
    key = server.alice.key
    r = httpx.get(server.proc.url + "/v1/sessions", params={"api_key": key})
    assert_error(r, 401)
    r = httpx.get(server.proc.url + "/v1/sessions", params={"apikey": "zg_" + "q" * 30})
    assert_error(r, 401)
    log = server.proc.log()
    assert "/v1/sessions?api_key=" in log  # the request was logged...
    assert key not in log and "zg_" + "q" * 30 not in log  # ...without the key


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/sessions/"),
        ("GET", "/v1/sessions/"),
        ("POST", "/v1/sessions/x/messages/"),
        ("GET", "/v1/webhooks/"),
        ("GET", "/healthz/"),
    ],
)
def test_trailing_slash_is_404_in_shape_not_a_redirect(
    server: Server, method: str, path: str
) -> None:
    # Issue 8 item 14: Starlette answered these with a bodiless 307 to another route.
    r = server.alice.request(method, path, json={}, follow_redirects=False)
    body = assert_error(r, 404, "not_found")
    assert "location" not in r.headers
    assert path in body["error"] and "trailing '/'" in body["hint"]


def test_every_hint_naming_details_comes_with_details(server: Server) -> None:
    server.alice.put("/v1/sessions/det", json={"start": False})
    responses = [
        server.alice.put("/v1/sessions/det", json={"start": "maybe"}),
        server.alice.post("/v1/sessions/det/messages", json={"to": "+5511999990001"}),
        server.alice.post("/v1/sessions/det/messages", json={"to": "+5511999990001", "text": " "}),
        server.alice.get("/v1/sessions/det/messages?before=abc"),
        server.alice.post(
            "/v1/sessions/det/messages",
            json={"to": "+5511999990001", "text": "x"},
            headers={"Idempotency-Key": "k" * 201},
        ),
    ]
    with_details = 0
    for r in responses:
        body = assert_error(r, 422)
        if "details" in body["hint"]:
            assert body.get("details"), body
            with_details += 1
        else:
            assert "details" not in body, body
    assert with_details == 1  # only the schema error lists fields


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_json_without_its_content_type_says_so(server: Server, content_type: str | None) -> None:
    server.alice.put("/v1/sessions/ctype", json={"start": False})
    headers = {} if content_type is None else {"Content-Type": content_type}
    for method, path, payload in [
        ("POST", "/v1/sessions/ctype/messages", b'{"to": "+5511999990001", "text": "x"}'),
        ("PUT", "/v1/sessions/ctype", b'{"start": false}'),
        ("POST", "/v1/webhooks", b'{"url": "https://example.com/h"}'),
    ]:
        r = server.alice.request(method, path, content=payload, headers=headers)
        body = assert_error(r, 422, "content_type_not_json")
        assert "Content-Type: application/json" in body["hint"]
        assert (content_type or "missing") in body["error"]
    assert server.alice.get("/v1/sessions/ctype/messages").json()["items"] == []


def test_the_engine_of_an_existing_session_cannot_change(server: Server) -> None:
    # Issue 8 item 11: this was a 200 with the engine silently unchanged.
    alice = server.alice
    r = alice.put("/v1/sessions/eng-lock", json={"engine": "sim", "start": False})
    assert r.status_code == 201
    r = alice.put(
        "/v1/sessions/eng-lock",
        json={"engine": "whatsmeow", "start": False, "send_rate": "1/60s"},
    )
    body = assert_error(r, 409, "engine_cannot_change")
    assert "sim" in body["error"] and "whatsmeow" in body["error"]
    after = alice.get("/v1/sessions/eng-lock").json()
    assert after["engine"] == "sim" and after["send_rate"] is None
    assert (
        alice.put("/v1/sessions/eng-lock", json={"engine": "sim", "start": False}).status_code
        == 200
    )
    assert alice.put("/v1/sessions/eng-lock", json={"start": False}).status_code == 200


def test_an_idempotency_key_reused_with_another_request_is_422(server: Server) -> None:
    # Issue 8 item 11: the first message used to come back whatever the new body said.
    alice = server.alice
    alice.put("/v1/sessions/idem", json={"start": False})
    url, key = "/v1/sessions/idem/messages", {"Idempotency-Key": "order-42"}
    first = alice.post(url, json={"to": "+5511999990001", "text": "pedido 42"}, headers=key)
    assert first.status_code == 202, first.text
    same = alice.post(url, json={"to": "+5511999990001", "text": "pedido 42"}, headers=key)
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    for body in [
        {"to": "+5511999990001", "text": "pedido 43"},
        {"to": "+5511999990002", "text": "pedido 42"},
        {"to": "+5511999990001", "media": {"type": "document", "base64": "JVBERi0xLjQK"}},
    ]:
        r = alice.post(url, json=body, headers=key)
        assert "order-42" in assert_error(r, 422, "idempotency_key_reused")["error"]
    items = alice.get(url).json()["items"]
    assert [m["id"] for m in items] == [first.json()["id"]]
    # The same request under another key is another message.
    other = alice.post(
        url, json={"to": "+5511999990001", "text": "pedido 42"}, headers={"Idempotency-Key": "o-43"}
    )
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
