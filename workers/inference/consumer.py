"""inferq's batching consumer: claims many queued jobs at once and runs them in batches.

Celery's own consumer handles one message per round trip (about 400 tasks/s here), which
caps small jobs far below the model's speed. This consumer blocks on the model's doorbell
(one list, however many lanes and owners), then claims up to a batch of Celery messages
per round trip from the model's priority lanes (``shared.lanes``, ``claim.lua``) by moving
them, atomically, into its own in-flight list, runs one forward pass per batch, and
removes each message only after its job's result is stored: a per-job acknowledgement.
A worker that dies leaves its claims in that list: restarted with the same id, it runs
them one at a time before it takes anything new; if it never comes back, another worker of
the model re-queues them once its heartbeat has been silent for ``INFERQ_WORKER_DEAD_S``.
"""
from __future__ import annotations

import logging
import os
import threading
import time

from shared import celery_message, keys, lanes, lua, tracing
from shared.job_store import JobStore
from shared.queue import DOORBELL_CAP
from shared.replication import Replication
from shared.settings import Settings
from shared.tasks import PREDICT_TASK
from workers.inference import job_spans
from workers.inference.batching import BatchPolicy
from workers.inference.execution import JobRunner, lost_message
from workers.inference.registry import ModelRegistry

log = logging.getLogger(__name__)

BLOCK_S = 1.0
"""How long an idle consumer blocks on its queue before checking whether to stop."""

RETRY_PAUSE_S = 1.0
"""Pause after a failed loop iteration (Redis down, say) before trying again."""

HEARTBEAT_INTERVAL_S = 5.0
"""How often a worker records that it is alive."""


# KEYS: workers zset, a dead worker's in-flight list, the queue, the doorbell. ARGV: worker id,
# cutoff. Moves the list back (oldest at the queue's head, claimed before any lane) only if the
# worker is still silent, and rings for it.
_RECLAIM = """
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if beat and tonumber(beat) >= tonumber(ARGV[2]) then return -1 end
local moved = 0
while redis.call('LMOVE', KEYS[2], KEYS[3], 'RIGHT', 'RIGHT') do moved = moved + 1 end
redis.call('ZREM', KEYS[1], ARGV[1])
if moved > 0 then redis.call('LPUSH', KEYS[4], 1) end
return moved
"""

RECONCILE_INTERVAL_S = 10.0
"""How often a consumer looks for workers of its model that stopped beating."""

EXIT_TIME_LIMIT = 70
"""Exit status of a worker that ended itself because a forward pass ran over its time limit."""


class BatchConsumer:
    """Serves one model's queue from one worker process."""

    def __init__(self, client, store: JobStore, registry: ModelRegistry, model: str,
                 worker_id: str, policy: BatchPolicy, settings: Settings | None = None):
        self.redis = client
        self.store = store
        self.registry = registry
        self.model = model
        self.worker_id = worker_id
        self.policy = policy
        self.settings = settings or Settings()
        self.stopping = threading.Event()
        self.runner = JobRunner(store, registry, self.settings, worker_id, self.stopping)
        self.queue = keys.queue(model)
        self.in_flight = keys.processing(worker_id, model)
        self.doorbell = keys.doorbell(model)
        self._claim_keys = lanes.claim_keys(model, self.in_flight)
        self._share_period = lanes.share_period(self.settings.lane_share)
        self._claim = lua.LuaScript(client, "claim")
        self.replication = Replication(client, self.settings.redis_min_replicas, self.settings.redis_wait_ms)
        self._reclaim = client.register_script(_RECLAIM)
        self._last_reconcile = 0.0
        self.first_claimed_at = 0.0
        self.busy_since: float | None = None
        self.busy_messages: list[bytes] = []

    def recover(self) -> int:
        """Finish what a previous life of this worker held, one job at a time.

        Its death may have been one of these jobs' doing (a poison pill), so none is put
        back into a batch: each runs alone, and one already started ``max_attempts`` times
        is failed as lost instead of run again. Returns how many were held.
        """
        held = self.redis.lrange(self.in_flight, 0, -1)
        if held:
            log.warning("recovering %d job(s) this worker held when it last stopped; running each alone",
                        len(held))
        for raw in reversed(held):  # oldest first
            if self.stopping.is_set():
                break
            if not self._fail_if_lost(raw):
                self.process([raw], time.time())
        return len(held)

    def _fail_if_lost(self, raw: bytes) -> bool:
        """True (and acknowledged) when the job behind ``raw`` has ended or must be given up."""
        try:
            message = celery_message.decode(raw, PREDICT_TASK)
            job = self.store.get(message.job_id)
        except celery_message.MalformedMessage as exc:
            log.error("discarding a message from %s: %s", self.in_flight, exc)
            job = None
        if job is not None and not job.status.is_terminal() and job.attempts < self.settings.max_attempts:
            return False
        if job is not None and not job.status.is_terminal():
            log.error("job %s: its worker was lost %d times; failing it", job.id, job.attempts)
            self.store.fail(job, "WorkerLost", lost_message(job.attempts))
            job_spans.failed_alone(message, "WorkerLost", lost_message(job.attempts))
        self.redis.lrem(self.in_flight, 1, raw)
        return True

    def run_forever(self) -> None:
        """Claim, run and acknowledge batches until ``stop`` is called.

        Every Redis call sits inside the retry loop: a Redis restart must pause this
        consumer, never end its thread.
        """
        threading.Thread(target=self._beat_forever, name=f"heartbeat-{self.model}", daemon=True).start()
        threading.Thread(target=self._watch_time_limit, name=f"watchdog-{self.model}", daemon=True).start()
        recovered = False
        while not self.stopping.is_set():
            try:
                if not recovered:
                    self.recover()
                    recovered = True
                self.reconcile()
                messages = self.gather()
                if messages:
                    self.process(messages, self.first_claimed_at)
            except Exception:
                log.exception("batch loop error; retrying in %.0f s", RETRY_PAUSE_S)
                # Whatever this batch had claimed is recovered on the next round.
                recovered = False
                self.stopping.wait(RETRY_PAUSE_S)
        try:
            self.redis.zrem(keys.workers(self.model), self.worker_id)
        except Exception:
            log.warning("could not deregister worker %s", self.worker_id)

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run_forever``."""
        self.stopping.set()

    def heartbeat(self) -> None:
        """Record this worker as alive for its model."""
        self.redis.zadd(keys.workers(self.model), {self.worker_id: time.time()})

    def _beat_forever(self) -> None:
        """Beat from a thread of its own: a long forward pass must not look like death."""
        while not self.stopping.is_set():
            try:
                self.heartbeat()
            except Exception:
                log.warning("heartbeat failed (Redis down?); retrying")
            self.stopping.wait(HEARTBEAT_INTERVAL_S)

    def reconcile(self) -> int:
        """Re-queue what workers of this model hold when they have stopped beating.

        A restarted worker recovers its own jobs; this covers one that never comes back.
        Returns how many jobs were re-queued.
        """
        now = time.time()
        if now - self._last_reconcile < RECONCILE_INTERVAL_S:
            return 0
        self._last_reconcile = now
        cutoff = now - self.settings.worker_dead_s
        moved = 0
        for raw in self.redis.zrangebyscore(keys.workers(self.model), "-inf", cutoff):
            worker = raw.decode()
            if worker == self.worker_id:
                continue
            count = self._reclaim(keys=[keys.workers(self.model), keys.processing(worker, self.model), self.queue,
                                        self.doorbell], args=[worker, cutoff])
            if count > 0:
                log.warning("worker %s stopped beating; re-queued the %d job(s) it held", worker, count)
                moved += count
        return moved

    def _watch_time_limit(self) -> None:
        """End the process when a batch outlives the model's time limit.

        A forward pass cannot be interrupted from Python, so the process exits and its
        supervisor starts a new one. A lone job is failed first (``TimeLimitExceeded``); a
        batch is left in the in-flight list, where the restart runs each job alone and so
        finds the slow one.
        """
        while not self.stopping.wait(0.5):
            since = self.busy_since
            if since is None:
                continue
            limit = self.registry.time_limit(self.model)
            if limit <= 0 or time.monotonic() - since <= limit:
                continue
            messages = list(self.busy_messages)
            log.error("a batch of %d job(s) of %s ran over its %.0f s time limit; restarting the worker",
                      len(messages), self.model, limit)
            if len(messages) == 1:
                self._fail_over_time(messages[0], limit)
            tracing.flush()
            os._exit(EXIT_TIME_LIMIT)

    def _fail_over_time(self, raw: bytes, limit: float) -> None:
        """Fail and acknowledge the lone job that ran over the model's time limit."""
        try:
            message = celery_message.decode(raw, PREDICT_TASK)
        except celery_message.MalformedMessage:
            message = None
        job = self.store.get(message.job_id) if message is not None else None
        if message is not None and job is not None:
            error = f"the job ran over the {limit:g} s time limit of model {self.model}; its worker was restarted"
            self.store.fail(job, "TimeLimitExceeded", error)
            job_spans.failed_alone(message, "TimeLimitExceeded", error)
        self.redis.lrem(self.in_flight, 1, raw)

    def gather(self) -> list[bytes]:
        """Wait for the doorbell, then claim as many jobs as the policy allows.

        A claim is made after every wait, rung or not: a token lost with a connection must
        delay work by one ``BLOCK_S`` at most, never strand it.
        """
        self.redis.blpop([self.doorbell], BLOCK_S)
        self._refresh_policy()
        limit = self.policy.max_batch_size
        batch = self.claim(limit, first=True)
        if not batch:
            return []
        self.first_claimed_at = time.time()
        deadline = time.monotonic() + self.policy.max_delay_s
        while len(batch) < limit:
            # The lanes are empty: adaptive batches go now, others wait out the delay.
            remaining = deadline - time.monotonic()
            if self.policy.adaptive or remaining <= 0:
                break
            if self.redis.blpop([self.doorbell], remaining) is None:
                break
            batch.extend(self.claim(limit - len(batch), first=False))
        return batch

    def claim(self, wanted: int, first: bool) -> list[bytes]:
        """Move up to ``wanted`` messages into this worker's in-flight list; ``first`` takes a lane turn."""
        return self._claim(keys=self._claim_keys,
                           args=[wanted, 1 if first else 0, self._share_period, DOORBELL_CAP])

    def _refresh_policy(self) -> None:
        """Follow the batching settings of the newest loaded version (a rollout may change them)."""
        try:
            self.policy = self.registry.batch_policy(self.model)
        except ValueError:  # nothing loaded right now: keep the last policy
            pass

    def process(self, messages: list[bytes], claimed_at: float) -> None:
        """Start, run and finish the jobs behind ``messages``, then acknowledge each one.

        ``claimed_at`` is when the batch's first message was taken: time after it, up to the
        forward pass, is the job's batch wait.
        """
        self.busy_messages = messages
        self.busy_since = time.monotonic()
        try:
            self._process(messages, claimed_at)
        finally:
            self.busy_since = None

    def _process(self, messages: list[bytes], claimed_at: float) -> None:
        """Run the batch, then acknowledge every message (malformed ones included) with its results."""
        decoded = []
        for raw in messages:
            try:
                decoded.append(celery_message.decode(raw, PREDICT_TASK))
            except celery_message.MalformedMessage as exc:
                log.error("discarding a message from %s: %s", self.queue, exc)
        pipe = self.redis.pipeline(transaction=False)
        self.runner.run(decoded, claimed_at, self.policy.max_batch_size, pipe)
        for raw in messages:
            pipe.lrem(self.in_flight, 1, raw)
        # The forward pass is over: a Redis slow to take the results (a failover) is not the
        # batch running over its time limit.
        self.busy_since = None
        self.replication.execute(pipe, f"finish of a batch of {self.model}")
