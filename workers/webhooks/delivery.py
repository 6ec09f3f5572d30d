"""Delivering one webhook event: sign, send, log the attempt, and schedule the retry.

A failure never touches the job: it is logged and retried from Redis (``keys.WEBHOOK_SCHEDULE``),
so retries survive any worker restart. Connection errors, timeouts, 429 and 5xx are
retried with jittered exponential backoff (honouring ``Retry-After``); any other answer
below 200 or from 300 up is final, as is a destination the SSRF guard refuses.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

import orjson

from shared import keys
from shared.job_store import JobStore
from shared.jobs import latency_bucket, rfc3339
from shared.outbox import Delivery, Outbox
from shared.replication import Replication
from shared.settings import Settings
from shared.ssrf import parse_networks
from shared.webhooks import DeliveryOutcome, WebhookEvent
from workers.webhooks import signing
from workers.webhooks.http import AttemptResult, post
from workers.webhooks.spans import attempt_span

log = logging.getLogger(__name__)

ORDER_RECHECK_S = 1.0
"""How soon a ``completed`` event waiting behind its ``started`` event is tried again."""

DEAD_LIST_LENGTH = 1000
"""Most dead deliveries kept for operators to inspect."""

MAX_DELAY_S = 24 * 3600
"""Upper bound on one retry delay, whatever ``Retry-After`` asks."""


def classify(result: AttemptResult, attempt: int, retries: int) -> DeliveryOutcome:
    """The outcome of attempt number ``attempt`` out of ``1 + retries``."""
    if result.denied:
        return DeliveryOutcome.DENIED
    if result.status is not None and 200 <= result.status < 300:
        return DeliveryOutcome.DELIVERED
    retryable = result.status is None or result.status == 429 or result.status >= 500
    if not retryable:
        return DeliveryOutcome.FAILED
    return DeliveryOutcome.RETRYING if attempt <= retries else DeliveryOutcome.DEAD


def backoff_s(schedule: list[float], attempt: int, retry_after_s: float | None) -> float:
    """Delay before attempt ``attempt + 1``: the schedule entry +-20%, at least Retry-After."""
    base = schedule[min(attempt, len(schedule)) - 1]
    delay = base * random.uniform(0.8, 1.2)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return min(delay, MAX_DELAY_S)


@dataclass(frozen=True)
class EventToSend:
    """One event's signed-over body, where it goes, and the trace of the job it tells about."""

    body: bytes
    url: str
    traceparent: str = ""


class Deliverer:
    """Sends webhook events for jobs; one per webhook worker process."""

    def __init__(self, settings: Settings, client):
        self.settings = settings
        self.redis = client
        self.store = JobStore(client, settings.job_ttl_s)
        self.outbox = Outbox(client, settings.job_ttl_s,
                             Replication(client, settings.redis_min_replicas, settings.redis_wait_ms))
        self.key = signing.secret_key(settings.webhook_secret)
        self.allowed = parse_networks(settings.webhook_allowed_networks)
        self.schedule = settings.webhook_schedule

    def event_body(self, job_id: str, event: WebhookEvent) -> EventToSend | None:
        """The event's body, the receiver's URL and the job's trace; None when there is nothing to send.

        Built from the job as it was when the event happened, stamped with that moment, so
        every attempt and redelivery of one ``webhook-id`` sends the same bytes.
        """
        job = self.store.get_event_snapshot(job_id, event)
        if job is None or job.webhook is None:
            return None
        moment = job.started_at if event is WebhookEvent.STARTED else job.finished_at
        body = orjson.dumps({"type": f"job.{event.value}", "timestamp": rfc3339(moment),
                             "data": job.to_public()})
        return EventToSend(body, job.webhook["url"], job.traceparent)

    def deliver(self, job_id: str, event: str, msg_id: str, attempt: int) -> DeliveryOutcome | None:
        """Make one attempt; returns its outcome (None when there was nothing to send)."""
        delivery = Delivery(job_id, WebhookEvent(event), attempt)
        found = self.event_body(job_id, delivery.event)
        if found is None:
            log.warning("webhook for job %s dropped: the job is gone or has no webhook", job_id)
            self.redis.zrem(keys.WEBHOOK_OUTSTANDING, delivery.member)
            return None
        # Taken off the queue and being attempted: not lost (the sweep judges by this time).
        self.redis.zadd(keys.WEBHOOK_OUTSTANDING, {delivery.member: time.time()}, xx=True)
        if delivery.event is WebhookEvent.COMPLETED and self.outbox.is_open(job_id, WebhookEvent.STARTED):
            self.outbox.schedule(delivery, time.time() + ORDER_RECHECK_S)
            return DeliveryOutcome.WAITING
        headers = signing.headers(self.key, msg_id, int(time.time()), found.body)
        with attempt_span(found.traceparent, delivery, found.url, msg_id, headers) as span:
            result = post(found.url, found.body, headers, self.settings.webhook_connect_timeout_s,
                          self.settings.webhook_timeout_s, self.allowed)
            outcome = classify(result, attempt, len(self.schedule))
            span.record(result, outcome)
        self._record(delivery, msg_id, found.url, result, outcome)
        if outcome is DeliveryOutcome.RETRYING:
            delay = backoff_s(self.schedule, attempt, result.retry_after_s)
            self.outbox.schedule(Delivery(job_id, delivery.event, attempt + 1), time.time() + delay)
        return outcome

    def _record(self, delivery: Delivery, msg_id: str, url: str, result: AttemptResult,
                outcome: DeliveryOutcome) -> None:
        entry = {"event": delivery.event.value, "webhook_id": msg_id, "attempt": delivery.attempt, "url": url,
                 "at": rfc3339(time.time()), "status_code": result.status, "error": result.error,
                 "duration_ms": round(result.duration_s * 1000, 1), "outcome": outcome.value}
        log.info("webhook %s attempt %d for job %s: %s (%s)", delivery.event.value, delivery.attempt,
                 delivery.job_id, outcome.value, result.status if result.status is not None else result.error)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(keys.deliveries(delivery.job_id), orjson.dumps(entry))
        pipe.expire(keys.deliveries(delivery.job_id), self.settings.job_ttl_s)
        pipe.hincrby(keys.METRICS_WEBHOOKS, outcome.value, 1)
        pipe.hincrby(keys.WEBHOOK_LATENCY, latency_bucket(result.duration_s), 1)
        pipe.hincrby(keys.WEBHOOK_LATENCY, "count", 1)
        pipe.hincrbyfloat(keys.WEBHOOK_LATENCY, "sum", result.duration_s)
        if outcome.is_final():
            self.outbox.settle(delivery, pipe)
        if outcome is DeliveryOutcome.DEAD:
            pipe.lpush(keys.DEAD_WEBHOOKS, orjson.dumps({**entry, "job_id": delivery.job_id}))
            pipe.ltrim(keys.DEAD_WEBHOOKS, 0, DEAD_LIST_LENGTH - 1)
        self.outbox.replication.execute(pipe, f"webhook outcome of job {delivery.job_id}")
