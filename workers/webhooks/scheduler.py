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

from shared import keys, redis_connection
from shared.outbox import Delivery, Outbox
from shared.tasks import WEBHOOK_QUEUE

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25
"""How often due retries are looked for."""

BATCH = 500
"""Most retries moved per look."""

SWEEP_INTERVAL_S = 5.0
"""How often deliveries that were queued but never finished are looked for."""


class RetryScheduler:
    """Queues due retries through the outbox; safe with any number of webhook workers.

    It also queues again deliveries whose message was lost: kombu pops a message and records
    it as unacknowledged in two steps, and a broker connection dying between them drops it.
    """

    def __init__(self, client, lost_after_s: float = 120.0, ttl_s: int = 24 * 3600):
        self.redis = client
        self.lost_after_s = lost_after_s
        self.outbox = Outbox(client, ttl_s)
        self._last_sweep = 0.0
        self.stopping = threading.Event()

    def requeue_lost(self, now: float | None = None) -> int:
        """Queue again every delivery outstanding for longer than ``lost_after_s``.

        A delivery that was only slow gets sent twice, under the same ``webhook-id``; receivers
        drop the duplicate (Standard Webhooks). Returns how many were queued.
        """
        now = time.time() if now is None else now
        if self.redis.llen(WEBHOOK_QUEUE) > 0:
            # Under a backlog, a delivery outstanding this long may simply still wait in the
            # queue: queuing it again would only lengthen the wait (and feed on itself). Only
            # once the queue has drained can an old entry mean a message lost after its pop.
            return 0
        lost = self.redis.zrangebyscore(keys.WEBHOOK_OUTSTANDING, "-inf", now - self.lost_after_s,
                                        start=0, num=BATCH)
        for member in lost:
            job_id, event = member.decode().rsplit("|", 1)
            attempt = 1 + sum(1 for raw in self.redis.lrange(keys.deliveries(job_id), 0, -1)
                              if orjson.loads(raw).get("event") == event)
            delivery = Delivery.from_outstanding(member.decode(), attempt)
            self.outbox.queue(delivery, now=now)
            log.warning("webhook %s for job %s was queued but never finished; queued it again (attempt %d)",
                        event, job_id, attempt)
        return len(lost)

    def move_due(self) -> int:
        """Queue every delivery whose time has come; returns how many this scheduler queued."""
        due = self.redis.zrangebyscore(keys.WEBHOOK_SCHEDULE, "-inf", repr(time.time()), start=0, num=BATCH)
        pipe = self.redis.pipeline(transaction=False)
        for member in due:
            try:
                delivery = Delivery.from_scheduled(member.decode())
            except (UnicodeDecodeError, ValueError):  # not ours (or an older format): never retried
                log.error("dropping an unreadable webhook schedule entry %r", member[:200])
                self.redis.zrem(keys.WEBHOOK_SCHEDULE, member)
                continue
            self.outbox.queue(delivery, scheduled=member.decode(), pipeline=pipe)
        return sum(pipe.execute())

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
        settings = worker.app.conf.inferq_settings
        self.scheduler = RetryScheduler(redis_connection.connect(settings), settings.webhook_lost_after_s,
                                        settings.job_ttl_s)
        threading.Thread(target=self.scheduler.run_forever, name="webhook-retries", daemon=True).start()

    def stop(self, worker) -> None:
        if self.scheduler is not None:
            self.scheduler.stopping.set()
