"""Verify inferq's webhook deliveries (Standard Webhooks), in any receiver.

    from inferq_client.webhooks import verify
    event = verify(request.get_data(), request.headers, os.environ["INFERQ_WEBHOOK_SECRET"])

The signature is ``v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">``;
the header may carry several space-separated signatures (during a secret rotation) and one
match is enough. Deduplicate on ``webhook-id``: retries and redeliveries keep it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300


class WebhookVerificationError(Exception):
    """The delivery is not authentic, is malformed, or is too old or too new."""


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str,
           tolerance_s: int = DEFAULT_TOLERANCE_S, now: float | None = None) -> Any:
    """Return the decoded event if the signature and timestamp check out; raise otherwise."""
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as missing:
        raise WebhookVerificationError(f"missing header {missing.args[0]}") from None
    _check_timestamp(timestamp, tolerance_s, time.time() if now is None else now)
    expected = _sign(_key(secret), msg_id, timestamp, body)
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            try:
                return json.loads(body)
            except ValueError:
                raise WebhookVerificationError("the body is not JSON") from None
    raise WebhookVerificationError("no matching signature")


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw + "==")
    except ValueError:
        raise WebhookVerificationError("the secret is not base64") from None
    if not key:
        raise WebhookVerificationError("the secret is empty")
    return key


def _sign(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _check_timestamp(timestamp: str, tolerance_s: int, now: float) -> None:
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    if abs(now - sent) > tolerance_s:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
