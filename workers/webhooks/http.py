"""One webhook attempt over HTTP: to the checked address, signed, bounded, no redirects.

Socket timeouts bound each read, not the attempt: a receiver that drips a byte every few
seconds would hold a sender thread for hours. So a watchdog shuts the attempt's socket down
at its total deadline, measured from the start of the connect to the last byte.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import certifi
import urllib3

from shared.ssrf import DeniedDestination, Network, resolve_allowed, system_resolver

MAX_RESPONSE_BYTES = 64 * 1024
"""How much of a receiver's answer is read (and then discarded)."""

USER_AGENT = "inferq-webhooks/1"


@dataclass
class AttemptResult:
    """What one attempt got: a status code or an error, and how long it took."""

    status: int | None = None
    error: str | None = None
    denied: bool = False
    retry_after_s: float | None = None
    duration_s: float = 0.0


def post(url: str, body: bytes, headers: dict[str, str], connect_timeout_s: float,
         total_timeout_s: float, allowed: list[Network], resolver=system_resolver) -> AttemptResult:
    """POST ``body`` to ``url``, connecting to the address the SSRF guard approved."""
    started = time.monotonic()
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    try:
        address = resolve_allowed(parts.hostname, port, allowed, resolver)
    except DeniedDestination as exc:
        return AttemptResult(error=str(exc), denied=True, duration_s=time.monotonic() - started)
    timeout = urllib3.Timeout(connect=connect_timeout_s, read=total_timeout_s)
    options = {"host": address, "port": port, "timeout": timeout, "retries": False, "maxsize": 1}
    if secure:
        options.update(server_hostname=parts.hostname, assert_hostname=parts.hostname,
                       cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    pool = (urllib3.HTTPSConnectionPool if secure else urllib3.HTTPConnectionPool)(**options)
    watchdog = Watchdog(total_timeout_s)
    pool.ConnectionCls = watchdog.watching(pool.ConnectionCls)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_headers = {**headers, "Host": parts.netloc, "Content-Type": "application/json",
                       "User-Agent": USER_AGENT}
    try:
        response = pool.urlopen("POST", path, body=body, headers=request_headers, redirect=False,
                                preload_content=False, assert_same_host=False)
        try:
            _drain(response, started + total_timeout_s)
        finally:
            response.release_conn()
        return AttemptResult(status=response.status, retry_after_s=_retry_after(response.headers),
                             duration_s=time.monotonic() - started)
    except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
        error = (f"TimeoutError: the attempt ran past its total deadline of {total_timeout_s:g} s"
                 if watchdog.fired else f"{type(exc).__name__}: {exc}")
        return AttemptResult(error=error, duration_s=time.monotonic() - started)
    finally:
        watchdog.cancel()
        pool.close()


class Watchdog:
    """Shuts down the sockets of one attempt when its total deadline passes."""

    def __init__(self, total_timeout_s: float):
        self.sockets: list[socket.socket] = []
        self.fired = False
        self._timer = threading.Timer(total_timeout_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watching(self, connection_class):
        """``connection_class`` that hands each socket it connects to this watchdog."""
        watchdog = self

        class Watched(connection_class):
            def connect(self):
                super().connect()
                watchdog.sockets.append(self.sock)
                if watchdog.fired:  # the deadline passed while connecting
                    watchdog.shut(self.sock)

        return Watched

    def _fire(self) -> None:
        self.fired = True
        for sock in self.sockets:
            self.shut(sock)

    @staticmethod
    def shut(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed
            pass

    def cancel(self) -> None:
        self._timer.cancel()


def _drain(response, deadline: float) -> None:
    """Read a bounded part of the answer, giving up at the attempt's deadline."""
    read = 0
    for chunk in response.stream(8192):
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES:
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the receiver kept sending past the attempt's deadline")


def _retry_after(headers) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or None."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
