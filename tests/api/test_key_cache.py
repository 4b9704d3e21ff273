"""API keys are cached for a second in the web process (issue 15): a key revoked by
another process (`zapgate keys revoke`) stops working within that second."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.api.conftest import make_user
from tests.conftest import ZapgateProcess, base_env, free_port, run_cli, wait_until


def test_a_key_revoked_elsewhere_stops_working_within_a_second(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path / "data", ZAPGATE_PORT=str(port))
    _, key = make_user(env, "cache@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp_path / "serve.log").start()
    try:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(3):  # known, then served from the cache
            assert httpx.get(proc.url + "/v1/sessions", headers=headers).status_code == 200
        revoked = run_cli(["keys", "revoke", "cache@example.com", "1"], env)
        assert revoked.returncode == 0, revoked.stderr
        t0 = time.monotonic()
        wait_until(
            lambda: httpx.get(proc.url + "/v1/sessions", headers=headers).status_code == 401,
            timeout=5,
            interval=0.05,
            what="the revoked key refused",
        )
        assert time.monotonic() - t0 < 2.0
    finally:
        proc.stop()
