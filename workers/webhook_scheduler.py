"""Moves webhook retries from Redis' schedule into the webhook queue once they are due.

Retries wait in a sorted set rather than as Celery ETA tasks, which a Redis-broker worker
would hold in memory; a killed webhook worker therefore loses none of them.
"""
from __future__ import annotations

import logging
import threading
import time

import orjson
from celery import bootsteps

from shared import keys, webhooks

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25
"""How often due retries are looked for."""

BATCH = 500
"""Most retries moved per look."""

# KEYS: schedule, queue. ARGV: now, most to move.
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, message in ipairs(due) do
  redis.call('LPUSH', KEYS[2], message)
  redis.call('ZREM', KEYS[1], message)
end
return #due
"""


SWEEP_INTERVAL_S = 5.0
"""How often deliveries that were queued but never finished are looked for."""


class RetryScheduler:
    """Atomically moves due deliveries; safe with any number of webhook workers.

    It also queues again deliveries whose message was lost: kombu pops a message and records
    it as unacknowledged in two steps, and a broker connection dying between them drops it.
    """

    def __init__(self, client, lost_after_s: float = 120.0):
        self.redis = client
        self.lost_after_s = lost_after_s
        self._move = client.register_script(_MOVE_DUE)
        self._last_sweep = 0.0
        self.stopping = threading.Event()

    def requeue_lost(self, now: float | None = None) -> int:
        """Queue again every delivery outstanding for longer than ``lost_after_s``.

        A delivery that was only slow gets sent twice, under the same ``webhook-id``; receivers
        drop the duplicate (Standard Webhooks). Returns how many were queued.
        """
        now = time.time() if now is None else now
        lost = self.redis.zrangebyscore(keys.WEBHOOK_OUTSTANDING, "-inf", now - self.lost_after_s,
                                        start=0, num=BATCH)
        for member in lost:
            job_id, event = member.decode().rsplit("|", 1)
            attempt = 1 + sum(1 for raw in self.redis.lrange(keys.deliveries(job_id), 0, -1)
                              if orjson.loads(raw).get("event") == event)
            pipe = self.redis.pipeline(transaction=True)
            pipe.zadd(keys.WEBHOOK_OUTSTANDING, {member: now}, xx=True)
            pipe.lpush(webhooks.WEBHOOK_QUEUE, webhooks.delivery_message(job_id, event, attempt))
            pipe.execute()
            log.warning("webhook %s for job %s was queued but never finished; queued it again (attempt %d)",
                        event, job_id, attempt)
        return len(lost)

    def move_due(self) -> int:
        """Queue every delivery whose time has come; returns how many."""
        return self._move(keys=[keys.WEBHOOK_SCHEDULE, webhooks.WEBHOOK_QUEUE],
                          args=[repr(time.time()), BATCH])

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                self.move_due()
                if time.monotonic() - self._last_sweep >= SWEEP_INTERVAL_S:
                    self._last_sweep = time.monotonic()
                    self.requeue_lost()
            except Exception:
                log.exception("moving due webhook retries failed; trying again")
            self.stopping.wait(POLL_INTERVAL_S)


class RetrySchedulerStep(bootsteps.StartStopStep):
    """Runs the retry scheduler beside the webhook worker's consumer."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.scheduler = None

    def start(self, worker) -> None:
        import redis

        from shared.settings import Settings

        settings = Settings.from_env()
        self.scheduler = RetryScheduler(redis.Redis.from_url(settings.redis_url), settings.webhook_lost_after_s)
        threading.Thread(target=self.scheduler.run_forever, name="webhook-retries", daemon=True).start()

    def stop(self, worker) -> None:
        if self.scheduler is not None:
            self.scheduler.stopping.set()
