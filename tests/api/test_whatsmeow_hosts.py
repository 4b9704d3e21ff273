"""A real `zapgate serve` running whatsmeow sessions in host processes (issue 14.2), on
the fake WhatsApp (tests/contract/whatsmeow_fake.py, real neonize clients): a killed
host is noticed and its session comes back without a new QR; SIGTERM ends the server
promptly although an unlinked session's connect() can never return, and leaves no host
process behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.api.conftest import Api, make_user
from tests.conftest import ZapgateProcess, base_env, free_port, wait_until
from tests.contract.whatsmeow_fake import FACTORY, ROOT, FakeWhatsApp

pytestmark = pytest.mark.timeout(120)


def host_pids(parent: int) -> list[int]:
    """The whatsmeow host processes whose parent is `parent`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"zapgate.engines.whatsmeow.host" in cmdline:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def test_hosts_are_restarted_when_killed_and_end_with_the_server(tmp_path: Path) -> None:
    net = FakeWhatsApp().serve()
    port = free_port()
    env = base_env(
        tmp_path / "data",
        ZAPGATE_PORT=str(port),
        ZAPGATE_ENGINE="whatsmeow",
        ZAPGATE_WHATSMEOW_CLIENT_FACTORY=FACTORY,
        # The reachability probe dials the proxy: the fake network's own loopback port.
        ZAPGATE_WHATSMEOW_PROXY=f"socks5://{net.address}",
        ZAPGATE_WHATSMEOW_RECONNECT_BASE="0.1",
        FAKE_WHATSAPP_ADDRESS=net.address,
        PYTHONPATH=str(ROOT),
    )
    _, key = make_user(env, "hosts@example.com")
    proc = ZapgateProcess(["serve"], env, port, tmp_path / "serve.log").start()
    try:
        api = Api(proc.url, key)
        for name in ("waiting", "linked"):
            assert api.put(f"/v1/sessions/{name}", json={"engine": "whatsmeow"}).status_code in (
                200,
                201,
            )
        wait_until(lambda: api.state("waiting") == "SCAN_QR", what="SCAN_QR")
        wait_until(lambda: api.state("linked") == "SCAN_QR", what="SCAN_QR")
        qr = api.get("/v1/sessions/linked/qr").json()["qr"]
        net.scan(qr, "+5511999990001")
        wait_until(lambda: api.state("linked") == "CONNECTED", what="CONNECTED")
        assert proc.proc is not None
        before = host_pids(proc.proc.pid)
        assert len(before) == 2  # an unlinked session never shares its host

        # A host killed from outside: noticed, and its session is back without a QR.
        client_id = api.get("/v1/sessions/linked").json()["client_id"]
        link = net.links[client_id]
        victim = link.pid
        assert victim in before
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: net.links.get(client_id) is not link, what="a new connection")
        wait_until(lambda: api.state("linked") == "CONNECTED", what="CONNECTED again")
        during = host_pids(proc.proc.pid)
        assert victim not in during and len(during) == 2

        # SIGTERM while "waiting" sits in whatsmeow's QR loop, which never returns.
        t0 = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        proc.proc.wait(timeout=15)
        took = time.monotonic() - t0
        assert took < 8.0, took
        wait_until(lambda: not any(alive(p) for p in during), timeout=5, what="no host left")
        assert "Traceback" not in proc.log()
    finally:
        proc.stop()
        net.close()
