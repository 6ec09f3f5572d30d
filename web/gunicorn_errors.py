"""gunicorn's own answers to requests it cannot parse, as problem+json instead of HTML.

gunicorn refuses a malformed request line, a bad header, too many headers or an
unsupported transfer coding before the app sees it, and writes a fixed HTML page through
``gunicorn.util.write_error``. Its workers call that function through the module, so
replacing it (from gunicorn.conf.py, before the workers start) is the one seam there is.
"""
from __future__ import annotations

import gunicorn.util
import orjson

PROBLEM_BASE = "https://inferq.dev/problems/"

SLUGS = {400: "bad-request", 403: "forbidden", 414: "uri-too-long", 417: "expectation-failed",
         431: "header-too-large", 500: "internal-error"}
"""gunicorn's statuses -> the problem types the API uses for them."""


def problem_bytes(status: int, reason: str, detail: str) -> bytes:
    """The whole HTTP response gunicorn sends before it closes the connection."""
    body = orjson.dumps({"type": PROBLEM_BASE + SLUGS.get(status, "bad-request"), "title": reason,
                         "status": status, "detail": detail or reason, "error": detail or reason})
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for ``gunicorn.util.write_error``. gunicorn's 501 (a transfer coding it does not
    speak) is the client's mistake, so it is answered as the 400 nginx gives for the same request."""
    if status_int == 501:
        status_int, reason = 400, "Unsupported transfer coding"
    gunicorn.util.write_nonblock(sock, problem_bytes(status_int, reason, mesg))


def install() -> None:
    """Make every gunicorn error page problem+json (called from gunicorn.conf.py)."""
    gunicorn.util.write_error = write_problem
