"""A real HTTP receiver on 127.0.0.1 for webhook tests: records every request, verifies
nothing itself (tests do), and can be told to fail or answer 410. It also serves `pages`
to GET (web pages and images for link previews)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def signature_ok(self, secret: str) -> bool:
        ts = self.headers["x-zapgate-timestamp"]
        mac = hmac.new(secret.encode(), ts.encode() + b"." + self.body, hashlib.sha256)
        return hmac.compare_digest("sha256=" + mac.hexdigest(), self.headers["x-zapgate-signature"])


@dataclass
class Receiver:
    """`fail_first[path] = n` answers 500 to the first n requests on that path;
    `failing` paths answer 500 until taken out; `gone` paths answer 410; `slow[path]`
    seconds pass before a path answers. With `keep_alive` it speaks HTTP/1.1 and keeps
    connections open (else HTTP/1.0: one request per connection); `connections` are the
    client addresses of the connections it accepted requests on."""

    keep_alive: bool = False
    received: dict[str, list[Received]] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    slow: dict[str, float] = field(default_factory=dict)
    connections: set[tuple[str, int]] = field(default_factory=set)
    # What a GET of a path answers: (content type, body); other paths are 404.
    pages: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def got(self, path: str) -> list[Received]:
        with self.lock:
            return list(self.received.get(path, []))

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if owner.keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                path = self.path
                with owner.lock:
                    owner.connections.add(self.client_address)
                    owner.received.setdefault(path, []).append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    left = owner.fail_first.get(path, 0)
                    if left:
                        owner.fail_first[path] = left - 1
                failed = left or path in owner.failing
                status = 410 if path in owner.gone else 500 if failed else 200
                time.sleep(owner.slow.get(path, 0.0))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                with owner.lock:
                    owner.received.setdefault(self.path, []).append(
                        Received({k.lower(): v for k, v in self.headers.items()}, b"")
                    )
                    page = owner.pages.get(self.path)
                self.send_response(404 if page is None else 200)
                if page is not None:
                    self.send_header("content-type", page[0])
                body = b"" if page is None else page[1]
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
