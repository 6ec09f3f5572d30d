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

import orjson

from shared import keys, webhooks
from shared.jobs import JobStore, latency_bucket, rfc3339
from shared.settings import Settings
from workers import signing
from workers.ssrf import parse_networks
from workers.webhook_http import AttemptResult, post

log = logging.getLogger(__name__)

ORDER_RECHECK_S = 1.0
"""How soon a ``completed`` event waiting behind its ``started`` event is tried again."""

DEAD_LIST_LENGTH = 1000
"""Most dead deliveries kept for operators to inspect."""

MAX_DELAY_S = 24 * 3600
"""Upper bound on one retry delay, whatever ``Retry-After`` asks."""


def classify(result: AttemptResult, attempt: int, retries: int) -> str:
    """``delivered``, ``retrying``, ``failed`` (final answer), ``denied`` or ``dead`` (out of retries)."""
    if result.denied:
        return "denied"
    if result.status is not None and 200 <= result.status < 300:
        return "delivered"
    retryable = result.status is None or result.status == 429 or result.status >= 500
    if not retryable:
        return "failed"
    return "retrying" if attempt <= retries else "dead"


def backoff_s(schedule: list[float], attempt: int, retry_after_s: float | None) -> float:
    """Delay before attempt ``attempt + 1``: the schedule entry +-20%, at least Retry-After."""
    base = schedule[min(attempt, len(schedule)) - 1]
    delay = base * random.uniform(0.8, 1.2)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return min(delay, MAX_DELAY_S)


class Deliverer:
    """Sends webhook events for jobs; one per webhook worker process."""

    def __init__(self, settings: Settings, client):
        self.settings = settings
        self.redis = client
        self.store = JobStore(client, settings.job_ttl_s)
        self.key = signing.secret_key(settings.webhook_secret)
        self.allowed = parse_networks(settings.webhook_allowed_networks)
        self.schedule = settings.webhook_schedule

    def deliver(self, job_id: str, event: str, msg_id: str, attempt: int) -> str | None:
        """Make one attempt; returns its outcome (None when there was nothing to send)."""
        job = self.store.get_public(job_id)
        if job is None or job.webhook is None:
            log.warning("webhook for job %s dropped: the job is gone or has no webhook", job_id)
            self.redis.zrem(keys.WEBHOOK_OUTSTANDING, webhooks.outstanding_member(job_id, event))
            return None
        if event == "completed" and self.redis.exists(keys.webhook_open(job_id, "started")):
            self.schedule_retry(job_id, event, attempt, ORDER_RECHECK_S)
            return "waiting"
        url = job.webhook["url"]
        body = orjson.dumps({"type": f"job.{event}", "timestamp": rfc3339(time.time()),
                             "data": job.to_public()})
        headers = signing.headers(self.key, msg_id, int(time.time()), body)
        result = post(url, body, headers, self.settings.webhook_connect_timeout_s,
                      self.settings.webhook_timeout_s, self.allowed)
        outcome = classify(result, attempt, len(self.schedule))
        self._record(job_id, event, msg_id, attempt, url, result, outcome)
        if outcome == "retrying":
            self.schedule_retry(job_id, event, attempt + 1,
                                backoff_s(self.schedule, attempt, result.retry_after_s))
        return outcome

    def schedule_retry(self, job_id: str, event: str, attempt: int, delay_s: float) -> None:
        """Keep the next attempt in Redis until it is due."""
        message = webhooks.delivery_message(job_id, event, attempt)
        due = time.time() + delay_s
        pipe = self.redis.pipeline(transaction=True)
        pipe.zadd(keys.WEBHOOK_SCHEDULE, {message: due})
        pipe.zadd(keys.WEBHOOK_OUTSTANDING, {webhooks.outstanding_member(job_id, event): due})
        pipe.execute()

    def _record(self, job_id, event, msg_id, attempt, url, result: AttemptResult, outcome) -> None:
        entry = {"event": event, "webhook_id": msg_id, "attempt": attempt, "url": url,
                 "at": rfc3339(time.time()), "status_code": result.status, "error": result.error,
                 "duration_ms": round(result.duration_s * 1000, 1), "outcome": outcome}
        log.info("webhook %s attempt %d for job %s: %s (%s)", event, attempt, job_id, outcome,
                 result.status if result.status is not None else result.error)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(keys.deliveries(job_id), orjson.dumps(entry))
        pipe.expire(keys.deliveries(job_id), self.settings.job_ttl_s)
        pipe.hincrby(keys.METRICS_WEBHOOKS, outcome, 1)
        pipe.hincrby(keys.WEBHOOK_LATENCY, latency_bucket(result.duration_s), 1)
        pipe.hincrby(keys.WEBHOOK_LATENCY, "count", 1)
        pipe.hincrbyfloat(keys.WEBHOOK_LATENCY, "sum", result.duration_s)
        if outcome != "retrying":
            pipe.delete(keys.webhook_open(job_id, event))
            pipe.zrem(keys.WEBHOOK_OUTSTANDING, webhooks.outstanding_member(job_id, event))
        if outcome == "dead":
            pipe.lpush(keys.DEAD_WEBHOOKS, orjson.dumps({**entry, "job_id": job_id}))
            pipe.ltrim(keys.DEAD_WEBHOOKS, 0, DEAD_LIST_LENGTH - 1)
        pipe.execute()
