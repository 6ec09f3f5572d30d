"""Ends jobs that were not started by their ``max_queue_s`` deadline, whoever serves their model.

A job's deadline must hold even for a model with no worker at all (scaled to zero, or
crashed), so the sweep runs in the webhook worker, the process that already keeps time for
retries, and not in the model's workers. Each look reads the deadlines due now from one
sorted set and ends each such job with ``JobStore.expire``, whose script refuses a job that has
started: a sweep racing a worker's start either expires the job before it runs or leaves it
alone. A worker that claims a job past its deadline does not start it either (``start.lua``),
and expires it itself, so the sweep is only needed where no worker is looking.

The same loop releases jobs held for the replicas' confirmation whose web process died before
it settled them (``shared.replication``).
"""
from __future__ import annotations

import logging
import threading
import time

from celery import bootsteps

from shared import keys, redis_connection
from shared.job_store import JobStore
from shared.replication import Replication

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25
"""How often due deadlines are looked for: expiry is exact to about this."""

BATCH = 500
"""Most jobs ended per look."""


def expire_due(redis, store: JobStore, now: float | None = None) -> int:
    """End every job whose deadline has passed while it was queued; returns how many expired."""
    now = time.time() if now is None else now
    due = redis.zrangebyscore(keys.QUEUE_DEADLINES, "-inf", repr(now), start=0, num=BATCH)
    expired = 0
    for raw in due:
        job = store.get_public(raw.decode())
        if job is not None and store.expire(job, now):
            expired += 1
        else:  # it started, ended, or is gone: its deadline no longer matters
            redis.zrem(keys.QUEUE_DEADLINES, raw)
    return expired


class DeadlineSweep:
    """Runs ``expire_due`` every ``POLL_INTERVAL_S``; safe with any number of webhook workers."""

    def __init__(self, client, ttl_s: int):
        self.redis = client
        self.store = JobStore(client, ttl_s)
        # Only its release script is used here (loaded once): holds are released whatever the wait.
        self.holds = Replication(client, 0, 1)
        self.stopping = threading.Event()

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                count = expire_due(self.redis, self.store)
                if count:
                    log.info("%d job(s) reached their max_queue_s unstarted and expired", count)
                released = self.holds.release_stale(self.redis)
                if released:
                    log.warning("released %d job(s) held for the replicas' confirmation by a web process "
                                "that never settled them", released)
            except Exception:
                log.exception("expiring overdue jobs failed; trying again")
            self.stopping.wait(POLL_INTERVAL_S)


class DeadlineSweepStep(bootsteps.StartStopStep):
    """Runs the deadline sweep beside the webhook worker's consumer."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.sweep: DeadlineSweep | None = None

    def start(self, worker) -> None:
        settings = worker.app.conf.inferq_settings
        self.sweep = DeadlineSweep(redis_connection.connect(settings), settings.job_ttl_s)
        threading.Thread(target=self.sweep.run_forever, name="queue-deadlines", daemon=True).start()

    def stop(self, worker) -> None:
        if self.sweep is not None:
            self.sweep.stopping.set()
