"""Moves webhook retries from Redis' schedule into the webhook queue once they are due.

Retries wait in a sorted set rather than as Celery ETA tasks, which a Redis-broker worker
would hold in memory; a killed webhook worker therefore loses none of them.
"""
from __future__ import annotations

import logging
import threading
import time

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


class RetryScheduler:
    """Atomically moves due deliveries; safe with any number of webhook workers."""

    def __init__(self, client):
        self.redis = client
        self._move = client.register_script(_MOVE_DUE)
        self.stopping = threading.Event()

    def move_due(self) -> int:
        """Queue every delivery whose time has come; returns how many."""
        return self._move(keys=[keys.WEBHOOK_SCHEDULE, webhooks.WEBHOOK_QUEUE],
                          args=[repr(time.time()), BATCH])

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                self.move_due()
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

        self.scheduler = RetryScheduler(redis.Redis.from_url(Settings.from_env().redis_url))
        threading.Thread(target=self.scheduler.run_forever, name="webhook-retries", daemon=True).start()

    def stop(self, worker) -> None:
        if self.scheduler is not None:
            self.scheduler.stopping.set()
