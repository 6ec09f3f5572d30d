"""A webhook receiver on 127.0.0.1 for tests: scripted answers, every request recorded."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


class Receiver:
    """Answers each POST with the next scripted ``(status, delay_s, headers)``, then 200."""

    def __init__(self, port: int = 0):
        self.received: list[Received] = []
        self.script: list[tuple[int, float, dict]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status, delay, headers = receiver.script.pop(0) if receiver.script else (200, 0, {})
                if delay:
                    time.sleep(delay)
                with receiver.lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
                    receiver.arrived.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout_s: float = 30.0, path: str | None = None) -> list[Received]:
        """Block until ``count`` requests (to ``path``, if given) arrived; return them."""
        deadline = time.monotonic() + timeout_s
        with self.arrived:
            while True:
                found = [r for r in self.received if path is None or r.path == path]
                if len(found) >= count or time.monotonic() >= deadline:
                    return found
                self.arrived.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
