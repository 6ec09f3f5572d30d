"""Reading request bodies and query parameters strictly: the right type, size and syntax."""
from __future__ import annotations

import re

import orjson
from flask import Request

from shared.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

JSON_MIMETYPE = "application/json"
PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)


def read_json(request: Request, max_bytes: int):
    """Parse a JSON body: 415 for another type, 413 over the limit, 400 for bad JSON.

    orjson rejects NaN, Infinity, out-of-range numbers and nesting deeper than 1024, so
    those are 400s rather than values coerced into the model or a RecursionError.
    """
    if request.mimetype != JSON_MIMETYPE:
        sent = request.content_type or "no Content-Type"
        raise UnsupportedMediaType(f"send Content-Type: {JSON_MIMETYPE} (got {sent})")
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; the limit is {max_bytes}")
    data = request.get_data(cache=False)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the body exceeds the limit of {max_bytes} bytes")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def wait_seconds(raw: str | None, cap_s: float) -> float:
    """The ``wait`` query parameter as seconds, capped; 400 when it is not a number >= 0."""
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise BadRequest(f"wait must be a finite number of seconds >= 0, got {raw!r}")
    return min(value, cap_s)


def prefer_wait(header: str | None, cap_s: float) -> float:
    """Seconds asked for by a ``Prefer: wait=S`` header (RFC 7240), capped; 0 when absent."""
    if not header:
        return 0.0
    match = PREFER_WAIT.search(header)
    return min(float(match.group(1)), cap_s) if match else 0.0
