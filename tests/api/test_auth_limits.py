"""Issue 8 items 1, 3, 10 through real `zapgate serve` processes: 20 concurrent sign-ups on
an empty server make one admin (and `users create` follows the same first-user rule); a
cookie copied before sign-out is dead after it, CSRF token included; the per-user session
limit holds under 50 parallel PUTs and an admin raises it per user."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import make_user
from tests.api.test_dashboard import HTML, PASSWORD, csrf, signed_up
from tests.conftest import ZapgateProcess, base_env, free_port, run_cli


def spawn(tmp: Path, **extra: str) -> ZapgateProcess:
    port = free_port()
    env = base_env(tmp / "data", ZAPGATE_PORT=str(port), **extra)
    proc = ZapgateProcess(args=["serve"], env=env, port=port, log_path=tmp / "serve.log")
    proc.start()
    return proc


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ZapgateProcess]:
    proc = spawn(tmp_path)
    try:
        yield proc
    finally:
        proc.stop()


def test_twenty_concurrent_sign_ups_on_an_empty_server_make_one_admin(
    fresh: ZapgateProcess,
) -> None:
    def sign_up(i: int) -> int:
        c = signed_up(fresh.url, f"racer{i}@example.com")
        return c.get("/admin").status_code

    # Every form fetched first, then all posted at once.
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(sign_up, range(20)))
    assert sorted(statuses) == [200] + [403] * 19


def test_the_first_user_created_with_the_cli_is_the_admin(fresh: ZapgateProcess) -> None:
    _, first = make_user(fresh.env, "first@example.com")
    _, second = make_user(fresh.env, "second@example.com")
    path = fresh.url + "/v1/admin/sessions"
    assert httpx.get(path, headers={"Authorization": f"Bearer {first}"}).status_code == 200
    assert httpx.get(path, headers={"Authorization": f"Bearer {second}"}).status_code == 403


def test_signing_out_kills_a_copied_cookie_and_its_csrf_token(fresh: ZapgateProcess) -> None:
    c = signed_up(fresh.url, "leaky@example.com")
    token = csrf(c.get("/keys").text)
    copy = httpx.Client(base_url=fresh.url, headers=HTML, cookies=dict(c.cookies), timeout=20)
    assert copy.get("/").status_code == 200  # the copy works while signed in
    # A second browser of the same user.
    other = httpx.Client(base_url=fresh.url, headers=HTML, timeout=20)
    login = {"csrf_token": csrf(other.get("/login").text), "email": "leaky@example.com"}
    assert other.post("/login", data={**login, "password": PASSWORD}).status_code == 303

    r = c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"

    r = copy.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    copy = httpx.Client(base_url=fresh.url, headers=HTML, cookies=dict(c.cookies), timeout=20)
    r = copy.post("/keys", data={"csrf_token": token, "name": "stolen"})
    assert r.status_code == 403
    r = copy.post(
        "/keys",
        data={"csrf_token": token, "name": "stolen"},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 403 and r.json()["errcode"] == "csrf_failed"
    # Only that browser was signed out: the other one still works, and no key was made.
    page = other.get("/keys")
    assert page.status_code == 200 and "stolen" not in page.text


def test_session_limit_under_fifty_parallel_puts(tmp_path: Path) -> None:
    proc = spawn(tmp_path, ZAPGATE_MAX_SESSIONS_PER_USER="10")
    try:
        _, key = make_user(proc.env, "many@example.com")
        auth = {"Authorization": f"Bearer {key}"}

        def put(i: int) -> httpx.Response:
            return httpx.put(
                f"{proc.url}/v1/sessions/s{i}", json={"start": False}, headers=auth, timeout=30
            )

        with ThreadPoolExecutor(max_workers=25) as pool:
            responses = list(pool.map(put, range(50)))
        assert sorted(r.status_code for r in responses) == [201] * 10 + [409] * 40
        refused = next(r.json() for r in responses if r.status_code == 409)
        assert refused["errcode"] == "session_limit_reached" and refused["limit"] == 10
        assert "10 sessions" in refused["error"] and "set-limit" in refused["hint"]
        assert len(httpx.get(f"{proc.url}/v1/sessions", headers=auth).json()["items"]) == 10
        # An existing session is still found at the limit.
        names = [r.json()["name"] for r in responses if r.status_code == 201]
        assert httpx.put(f"{proc.url}/v1/sessions/{names[0]}", headers=auth).status_code == 200
        r = httpx.put(
            f"{proc.url}/v1/sessions/one-more", headers={**auth, "Accept-Language": "pt-BR"}
        )
        assert r.status_code == 409
        assert r.json()["error"] == "Esta conta já tem 10 sessões, o máximo permitido."

        # An admin raises this user's limit; the running server honours it at once.
        out = run_cli(["users", "set-limit", "many@example.com", "11"], proc.env)
        assert out.returncode == 0, out.stderr
        assert httpx.put(f"{proc.url}/v1/sessions/one-more", headers=auth).status_code == 201
        assert httpx.put(f"{proc.url}/v1/sessions/too-many", headers=auth).status_code == 409
        out = run_cli(["users", "set-limit", "many@example.com", "lots"], proc.env)
        assert out.returncode == 2 and "error:" in out.stderr and "hint:" in out.stderr
        out = run_cli(["users", "set-limit", "nobody@example.com", "3"], proc.env)
        assert out.returncode == 1 and "nobody@example.com" in out.stderr
        out = run_cli(["users", "set-limit", "many@example.com", "default"], proc.env)
        assert out.returncode == 0, out.stderr
        assert httpx.put(f"{proc.url}/v1/sessions/too-many", headers=auth).status_code == 409
    finally:
        proc.stop()
