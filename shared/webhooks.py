"""What a job's webhook is, checked at submit time, and the names its deliveries share.

Submit-time checks refuse what can never be a safe receiver (wrong scheme, no host, a
denied address written out, credentials, overlong URL); addresses are checked again, after
DNS, at delivery time.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.errors import InvalidInput
from shared.ssrf import Network, denial_reason, literal_address


class WebhookEvent(enum.StrEnum):
    """What a job's webhook can be told: that it started, or that it ended (any terminal state)."""

    STARTED = "started"
    COMPLETED = "completed"


class DeliveryOutcome(enum.StrEnum):
    """How one delivery attempt ended; the delivery log and ``inferq_webhook_deliveries_total`` use these."""

    DELIVERED = "delivered"
    """The receiver answered 2xx."""
    RETRYING = "retrying"
    """A connection error, timeout, 429 or 5xx: another attempt is scheduled."""
    FAILED = "failed"
    """Any other answer (3xx, 4xx): final, the receiver refused the event."""
    DENIED = "denied"
    """The SSRF guard refused the destination: final, nothing was sent."""
    DEAD = "dead"
    """Still retryable after the last scheduled retry: final, listed for operators."""
    WAITING = "waiting"
    """Not attempted: a completed event waits while its started event is undelivered."""

    def is_final(self) -> bool:
        """True when no further attempt of this delivery will be made."""
        return self not in (DeliveryOutcome.RETRYING, DeliveryOutcome.WAITING)


EVENTS = tuple(event.value for event in WebhookEvent)
DEFAULT_EVENTS = (WebhookEvent.COMPLETED.value,)
MAX_URL_LENGTH = 2048


@dataclass(frozen=True)
class WebhookSpec:
    """Where to send a job's events, and which events."""

    url: str
    events: tuple[str, ...] = DEFAULT_EVENTS

    def to_public(self) -> dict:
        return {"url": self.url, "events": list(self.events)}


def parse_webhook(value, allowed: Iterable[Network] = ()) -> WebhookSpec:
    """The ``webhook`` field of a submit body, or ``InvalidInput`` (422) saying what is wrong.
    ``allowed`` are the networks a host written as an address may still be in."""
    if not isinstance(value, dict):
        raise InvalidInput("'webhook' must be an object with a 'url'")
    unknown = sorted(set(value) - {"url", "events"})
    if unknown:
        raise InvalidInput(f"unknown field(s) in 'webhook': {', '.join(unknown)}")
    url = value.get("url")
    check_url(url, allowed)
    assert isinstance(url, str)  # check_url refuses anything else
    events = value.get("events", list(DEFAULT_EVENTS))
    if (not isinstance(events, list) or not events
            or not all(isinstance(e, str) and e in EVENTS for e in events)):
        raise InvalidInput(f"webhook 'events' must be a non-empty subset of {list(EVENTS)}")
    return WebhookSpec(url=url, events=tuple(e for e in EVENTS if e in events))


def check_url(url, allowed: Iterable[Network] = ()) -> None:
    """Accept only http(s) URLs with a host that is not a denied address (``shared.ssrf``), no
    credentials, at most 2048 characters. Names are resolved and checked again at send time."""
    if not isinstance(url, str) or not url:
        raise InvalidInput("webhook 'url' must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"webhook url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"webhook url is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"webhook url scheme must be http or https, not {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise InvalidInput("webhook url has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("webhook url must not carry credentials")
    if port == 0:
        raise InvalidInput("webhook url has port 0")
    address = literal_address(parts.hostname)
    reason = denial_reason(address, allowed) if address is not None else None
    if reason:
        raise InvalidInput(f"webhook url points at a denied address: {reason}")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise InvalidInput("webhook url contains whitespace or control characters")


def webhook_id(job_id: str, event: str) -> str:
    """The ``webhook-id`` of one event: the same on every retry and redelivery."""
    return f"msg_{job_id}_{WebhookEvent(event).value}"
