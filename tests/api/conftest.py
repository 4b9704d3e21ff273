"""Fixtures for tests that talk to real zapgate processes over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ZapgateProcess, base_env, free_port, run_cli
from tests.receiver import Receiver


def make_user(env: dict[str, str], email: str, *, admin: bool = False) -> tuple[int, str]:
    """Create a user and an API key through the CLI; returns (user id, key)."""
    args = ["users", "create", email] + (["--admin"] if admin else [])
    out = run_cli(args, env)
    assert out.returncode == 0, out.stderr
    user_id = int(out.stdout.strip().splitlines()[-1])
    out = run_cli(["keys", "create", email], env)
    assert out.returncode == 0, out.stderr
    return user_id, out.stdout.strip().splitlines()[-1]


def messaging_env(tmp: Path, **extra: str) -> tuple[dict[str, str], int]:
    """The environment of a `zapgate serve` (sim engine) that messages flow through, and
    its port: webhooks to the loopback receiver allowed and retried fast, no send rate."""
    port = free_port()
    env = base_env(
        tmp / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_ALLOW_PRIVATE_URLS="true",
        ZAPGATE_WEBHOOK_BACKOFF_BASE="0.2",
        ZAPGATE_SEND_RATE="off",
        **extra,
    )
    return env, port


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A loopback webhook receiver for the module's server."""
    r = Receiver().start()
    yield r
    r.stop()


@dataclass
class Api:
    base: str
    key: str

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kw.pop("headers", {})}
        return httpx.request(method, self.base + path, headers=headers, timeout=20, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def state(self, name: str) -> str:
        return str(self.get(f"/v1/sessions/{name}").json()["state"])

    def subscribe(self, receiver: Receiver, path: str = "/hook") -> None:
        """A webhook of every event to `receiver` at `path`."""
        hook = self.post("/v1/webhooks", json={"url": receiver.url(path)})
        assert hook.status_code == 201, hook.text


@dataclass
class Server:
    proc: ZapgateProcess
    env: dict[str, str]
    alice: Api
    bob: Api
    admin: Api
    alice_id: int
    bob_id: int


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `zapgate serve` (embedded, SQLite, sim engine) shared by a module's tests."""
    tmp: Path = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = base_env(tmp / "data", ZAPGATE_PORT=str(port), ZAPGATE_MAX_BODY_BYTES="65536")
    _, admin_key = make_user(env, "admin@example.com", admin=True)
    alice_id, alice_key = make_user(env, "alice@example.com")
    bob_id, bob_key = make_user(env, "bob@example.com")
    proc = ZapgateProcess(args=["serve"], env=env, port=port, log_path=tmp / "serve.log")
    proc.start()
    try:
        yield Server(
            proc=proc,
            env=env,
            alice=Api(proc.url, alice_key),
            bob=Api(proc.url, bob_key),
            admin=Api(proc.url, admin_key),
            alice_id=alice_id,
            bob_id=bob_id,
        )
    finally:
        proc.stop()
