"""Shared test helpers: free loopback ports and real `zapgate` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ZAPGATE = [sys.executable, "-m", "zapgate"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_block(n: int) -> int:
    """A base port with `n` consecutive free ports after it (per-user topology)."""
    for _ in range(200):
        base = free_port()
        if base + n >= 65535:
            continue
        ok = True
        for p in range(base, base + n):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no block of free ports")


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no ZAPGATE_*/production variables from the outside."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ZAPGATE_")
        and k not in {"IS_PRODUCTION", "RAILWAY_ENVIRONMENT", "PORT"}
    }
    env.update(
        ZAPGATE_DATA_DIR=str(data_dir),
        ZAPGATE_ENGINE="sim",
        ZAPGATE_QR_FIRST_TTL="30",
        ZAPGATE_QR_TTL="10",
        ZAPGATE_HEALTH_TTL="1",
        ZAPGATE_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZAPGATE, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


@dataclass
class ZapgateProcess:
    args: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    health_path: str = "/healthz"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ZapgateProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*ZAPGATE, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zapgate {self.args} exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + self.health_path, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"zapgate {self.args} did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[type[ZapgateProcess]]:
    """Start real zapgate processes; all are stopped at the end of the test."""
    started: list[ZapgateProcess] = []

    def _spawn(
        args: list[str],
        env: dict[str, str],
        port: int,
        name: str = "zapgate",
        health_path: str = "/healthz",
    ) -> ZapgateProcess:
        p = ZapgateProcess(
            args=args,
            env=env,
            port=port,
            log_path=tmp_path / f"{name}.log",
            health_path=health_path,
        )
        started.append(p)
        return p

    yield _spawn  # type: ignore[misc]
    for p in started:
        p.stop()


def wait_until(fn, timeout: float = 15.0, interval: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")
