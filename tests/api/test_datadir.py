"""A data directory is owned by one process (issue 8.12): a second `zapgate serve` on a
running one's data directory stops at once, naming the other process, and touches
nothing; a busy port is found before the worker starts."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.api.conftest import Api, make_user
from tests.conftest import ZAPGATE, ZapgateProcess, base_env, free_port, wait_until
from zapgate.datadir import DataDirLock, bind_listener
from zapgate.errors import ConfigError

PHONE = "+5511999990003"


def test_a_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    first = DataDirLock.acquire(tmp_path / "d", "worker")
    with pytest.raises(ConfigError, match="in use by another zapgate process"):
        DataDirLock.acquire(tmp_path / "d", "worker")
    DataDirLock.acquire(tmp_path / "d", "web").release()  # another role is free
    first.release()
    DataDirLock.acquire(tmp_path / "d", "worker").release()


def test_a_busy_port_is_a_config_error(tmp_path: Path) -> None:
    sock = bind_listener("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.listen()
    try:
        with pytest.raises(ConfigError, match=f"Port {port} on 127.0.0.1 is already in use"):
            bind_listener("127.0.0.1", port)
    finally:
        sock.close()


async def test_accepted_connections_do_not_wait_for_delayed_acks() -> None:
    """Issue 15: the listener was made with proto 0, so asyncio left Nagle on for every
    accepted socket, and each keep-alive response written in two parts waited 40 ms for
    the client's delayed ACK."""
    import asyncio
    import socket

    sock = bind_listener("127.0.0.1", 0)
    nodelay: list[int] = []

    async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw = writer.get_extra_info("socket")
        nodelay.append(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(handle, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        while not nodelay:
            await asyncio.sleep(0.01)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert nodelay == [1]


def _second(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    out = subprocess.run([*ZAPGATE, *args], env=env, capture_output=True, text=True, timeout=30)
    assert time.monotonic() - started < 20
    return out


def test_second_serve_on_the_same_data_dir_leaves_the_first_alone(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(tmp_path / "data", ZAPGATE_PORT=str(port))
    _, key = make_user(env, "owner@example.com")
    first = ZapgateProcess(["serve"], env, port, tmp_path / "first.log").start()
    api = Api(first.url, key)
    try:
        assert api.put("/v1/sessions/default", json={"engine": "sim"}).status_code == 201
        wait_until(lambda: api.state("default") == "SCAN_QR", what="SCAN_QR")
        qr = api.get("/v1/sessions/default/qr").json()["qr"]
        assert api.post("/v1/sim/scan", json={"qr": qr, "phone": PHONE}).status_code == 200
        wait_until(lambda: api.state("default") == "CONNECTED", what="CONNECTED")

        # Same data dir, another port: refused before anything is touched.
        out = _second(["serve"], {**env, "ZAPGATE_PORT": str(free_port())})
        assert out.returncode == 2, out.stderr
        assert f"in use by another zapgate process (pid {first.proc.pid}" in out.stderr  # type: ignore[union-attr]
        assert "hint:" in out.stderr and "Traceback" not in out.stderr
        # A worker on that data dir is refused the same way.
        out = _second(["worker", "--port", str(free_port())], env)
        assert out.returncode == 2 and "in use by another zapgate process" in out.stderr

        # Another data dir, the same port: the port is checked before the worker starts.
        other = tmp_path / "other"
        out = _second(["serve"], base_env(other, ZAPGATE_PORT=str(port)))
        assert out.returncode == 2 and f"Port {port} on 127.0.0.1 is already in use" in out.stderr
        assert not (other / "worker-journal.db").exists()

        # The first server never noticed: still CONNECTED, still sending.
        assert api.state("default") == "CONNECTED"
        r = api.post("/v1/sessions/default/messages", json={"to": "+5511988887777", "text": "ok"})
        assert r.status_code == 201, r.text
    finally:
        first.stop()
    # Once the first has exited, the data dir is free again.
    again = ZapgateProcess(["serve"], env, free_port(), tmp_path / "again.log")
    again.env = {**env, "ZAPGATE_PORT": str(again.port)}
    again.start()
    again.stop()
