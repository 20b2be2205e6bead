"""A pass-through HTTP proxy on loopback in front of a real server, counting the requests in flight at it.

The llama.cpp server reports requests only once they are answered (its access log); this proxy sits at the
server's door and counts each chat request from the moment it arrives until its reply is sent back, so a
test sees how many requests the server had at once, whatever the clients believe they sent.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from .loopback import LoopbackServer


class CountingProxy(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")  # e.g. http://127.0.0.1:PORT (no /v1)
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=600)

    def start(self) -> CountingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                counted = method == "POST" and self.path.endswith("/chat/completions")
                if counted:
                    with proxy._lock:
                        proxy.in_flight += 1
                        proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                try:
                    headers = {k: v for k, v in self.headers.items()
                               if k.lower() not in ("host", "content-length", "connection")}
                    r = proxy._client.request(method, proxy.upstream + self.path, content=body, headers=headers)
                    data = r.content
                    self.send_response(r.status_code)
                    for k, v in r.headers.items():
                        if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                             "content-encoding"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    if counted:
                        with proxy._lock:
                            proxy.in_flight -= 1
                            proxy.served += 1

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        return self._serve(Handler)

    def stop(self) -> None:
        super().stop()
        self._client.close()
