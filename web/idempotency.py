"""``Idempotency-Key`` on submit: a retried request gets the original job, whatever its state.

The key maps, for ``job_ttl_s``, to the job id and a hash of what was asked (model, version,
body). The same key with a different request is a 409, so a client bug cannot silently
return someone else's predictions.
"""
from __future__ import annotations

import hashlib
import re

import orjson

from shared import keys
from shared.errors import BadRequest, Conflict

MAX_KEY_LENGTH = 255


def request_hash(model: str, pinned_version: int | None, body_digest: bytes, headers: dict[str, str]) -> str:
    """What identifies a submit: model, pinned version (None: the newest), the body's SHA-256
    and the webhook headers."""
    digest = hashlib.sha256(f"{model}\n{'latest' if pinned_version is None else pinned_version}\n".encode())
    digest.update(orjson.dumps(headers, option=orjson.OPT_SORT_KEYS))
    digest.update(body_digest)
    return digest.hexdigest()


KEY_PATTERN = f"^[\\x20-\\x7e]{{1,{MAX_KEY_LENGTH}}}$"
"""Printable ASCII, as published in /openapi.json (header values beyond ASCII decode ambiguously)."""


def check_key(key: str) -> str:
    """A usable key, or 400."""
    if not re.fullmatch(KEY_PATTERN, key):
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


def claim(redis, key: str, owner: str, job_id: str, fingerprint: str, ttl_s: int) -> str | None:
    """Reserve ``owner``'s ``key`` for ``job_id``; returns an earlier job's id if it was used before.

    Raises ``Conflict`` when the key was used for a different request.
    """
    name = keys.idempotency(f"{owner}:{check_key(key)}")
    record = orjson.dumps({"job_id": job_id, "request": fingerprint})
    if redis.set(name, record, nx=True, ex=ttl_s):
        return None
    earlier = orjson.loads(redis.get(name) or b"{}")
    if earlier.get("request") != fingerprint:
        raise Conflict("this Idempotency-Key was already used for a different request")
    return earlier.get("job_id")


def release(redis, key: str, owner: str) -> None:
    """Forget a reservation whose job could not be stored."""
    redis.delete(keys.idempotency(f"{owner}:{key}"))
