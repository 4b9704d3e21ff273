"""One process per data directory and role, and the listening port bound before start-up.

A second `zapgate serve` on a running one's data directory used to restore its sessions,
fail on the busy port, and on exit record every session STOPPED while the first one kept
sending. Now the data directory is locked (an advisory `flock`, released by the kernel
even on `kill -9`) before anything in it is read, and the port is bound before the
application starts, so a second process stops at once with a clear error.

Roles: `worker` (sessions, journal: `zapgate serve` and `zapgate worker`) and `web` (the
SQLite registry: `zapgate serve` and `zapgate web` on SQLite), so the classic `zapgate
worker` + `zapgate web` pair may still share one `./data`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path

from zapgate.errors import ConfigError
from zapgate.i18n import N_


class DataDirLock:
    """Held for the life of the process; `release()` for tests and clean exits."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path, role: str) -> DataDirLock:
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / f"{role}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                N_(
                    "The data directory {data_dir} is in use by another zapgate process "
                    "(pid {pid}, as {role})."
                ),
                hint=N_(
                    "Stop that process first, or give this one its own data directory "
                    "(--data-dir or ZAPGATE_DATA_DIR)."
                ),
                data_dir=str(data_dir),
                pid=holder,
                role=role,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the flock
            self._fd = None


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a busy port is a ConfigError before start-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: accepted sockets inherit it, and asyncio turns Nagle off
    # (TCP_NODELAY) only on sockets whose proto says TCP. With Nagle on, every response
    # written in two parts waited for the client's delayed ACK: 40 ms per request on a
    # keep-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                N_("Port {port} on {host} is already in use (another zapgate?)."),
                hint=N_("Stop the process listening there, or pick another port (--port)."),
                port=port,
                host=host,
            ) from None
        raise ConfigError(
            N_("Cannot listen on {host}:{port}: {reason}."),
            hint=N_("Check --host and --port."),
            host=host,
            port=port,
            reason=exc.strerror,
        ) from None
    sock.set_inheritable(True)
    return sock
