"""API keys: ``Authorization: Bearer <key>`` on every /v1 and /v2 route once keys are configured.

Keys are held only as SHA-256 digests and compared in constant time. Each job belongs to
the key that created it: another key gets a 404 for it (not a 403), so ids cannot be probed.
Probes (v2 health included), metrics and the API document stay open.
"""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from flask import Flask, g, request

from shared.errors import Forbidden, Unauthorized
from shared.settings import Settings

OPEN_PREFIXES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/dashboard", "/v2/health/")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """The configured keys, as digests; ``owner_of`` maps a request to its key's owner id."""

    def __init__(self, keys: list[str], operator_keys: list[str] | None = None):
        self._operators = [_digest(key) for key in operator_keys or []]
        self._digests = [_digest(key) for key in keys] + self._operators

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """Keys from ``INFERQ_API_KEYS`` (comma-separated) and ``INFERQ_API_KEYS_FILE`` (one per line);
        operator keys from ``INFERQ_ADMIN_KEYS``, which are API keys too."""
        keys = [k.strip() for k in settings.api_keys.split(",") if k.strip()]
        if settings.api_keys_file:
            for line in Path(settings.api_keys_file).read_text().splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    keys.append(line.strip())
        return cls(keys, [k.strip() for k in settings.admin_keys.split(",") if k.strip()])

    def is_operator(self, owner: str) -> bool:
        """True when ``owner`` (from ``owner_of``) is one of the operator keys."""
        return any(digest.hex()[:32] == owner for digest in self._operators)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def owner_of(self, authorization: str | None) -> str:
        """An opaque owner id for a valid bearer key; ``Unauthorized`` otherwise."""
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthorized("send Authorization: Bearer <api key>")
        candidate = _digest(presented.strip())
        match = None
        for digest in self._digests:  # no early exit: time does not depend on which key matched
            if hmac.compare_digest(candidate, digest):
                match = digest
        if match is None:
            raise Unauthorized("the API key is not valid")
        return match.hex()[:32]


def init_app(app: Flask, keys: ApiKeys) -> None:
    """Authenticate /v1 and /v2 requests before any handler runs; ``g.owner`` names the caller."""

    @app.before_request
    def authenticate():
        g.owner = ""
        g.operator = not keys.enabled  # without keys, whoever reaches the port runs the service
        if keys.enabled and not request.path.startswith(OPEN_PREFIXES):
            g.owner = keys.owner_of(request.headers.get("Authorization"))
            g.operator = keys.is_operator(g.owner)


def is_operator() -> bool:
    """True for an operator key, or for anyone when no keys are configured."""
    return bool(getattr(g, "operator", True))


def require_operator() -> None:
    """403 unless the caller holds an operator key (``INFERQ_ADMIN_KEYS``) or keys are off."""
    if not is_operator():
        raise Forbidden("this is an operator route: send an operator key (INFERQ_ADMIN_KEYS)")


def current_owner() -> str:
    """The calling key's owner id ('' when keys are off)."""
    return getattr(g, "owner", "")
