"""inferq's batching consumer: claims many queued jobs at once and runs them in batches.

Celery's own consumer handles one message per round trip (about 400 tasks/s here), which
caps small jobs far below the model's speed. This consumer reads the same Celery messages
from the model's Redis list, but claims up to a batch of them per round trip by moving
them (LMOVE, atomically) into its own in-flight list, runs one forward pass per batch, and
removes each message only after its job's result is stored: a per-job acknowledgement.
A worker that dies leaves its claims in that list; a restarted worker with the same id
puts them back on the queue before it takes anything new.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict


from shared import celery_message, keys
from shared.broker import PREDICT_TASK
from shared.jobs import ALREADY_FINISHED, Job, JobStore
from workers.batching import BatchPolicy, Outcome, run_batched
from workers.registry import ModelRegistry

log = logging.getLogger(__name__)

BLOCK_S = 1.0
"""How long an idle consumer blocks on its queue before checking whether to stop."""

RETRY_PAUSE_S = 1.0
"""Pause after a failed loop iteration (Redis down, say) before trying again."""

HEARTBEAT_INTERVAL_S = 5.0
"""How often a worker records that it is alive."""

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
"""Upper bounds of the forward-pass size histogram."""

# KEYS: queue, in-flight list. ARGV: most messages to move. Oldest (rightmost) first.
_CLAIM = """
local moved = {}
for i = 1, tonumber(ARGV[1]) do
  local message = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not message then break end
  moved[#moved + 1] = message
end
return moved
"""


class BatchConsumer:
    """Serves one model's queue from one worker process."""

    def __init__(self, client, store: JobStore, registry: ModelRegistry, model: str,
                 worker_id: str, policy: BatchPolicy):
        self.redis = client
        self.store = store
        self.registry = registry
        self.model = model
        self.worker_id = worker_id
        self.policy = policy
        self.queue = keys.queue(model)
        self.in_flight = keys.processing(worker_id, model)
        self.stopping = threading.Event()
        self._claim = client.register_script(_CLAIM)
        self._last_heartbeat = 0.0
        self.first_claimed_at = 0.0

    def recover(self) -> int:
        """Put back the claims a previous life of this worker left, oldest at the queue's head."""
        moved = 0
        while self.redis.lmove(self.in_flight, self.queue, "RIGHT", "RIGHT") is not None:
            moved += 1
        if moved:
            log.warning("re-queued %d job(s) this worker held when it last stopped", moved)
        return moved

    def run_forever(self) -> None:
        """Claim, run and acknowledge batches until ``stop`` is called.

        Every Redis call sits inside the retry loop: a Redis restart must pause this
        consumer, never end its thread.
        """
        recovered = False
        while not self.stopping.is_set():
            try:
                if not recovered:
                    self.recover()
                    recovered = True
                self.heartbeat()
                messages = self.gather()
                if messages:
                    self.process(messages, self.first_claimed_at)
            except Exception:
                log.exception("batch loop error; retrying in %.0f s", RETRY_PAUSE_S)
                # Whatever this batch had claimed goes back to the queue on the next round.
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
        """Record this worker as alive for its model (throttled)."""
        now = time.time()
        if now - self._last_heartbeat >= HEARTBEAT_INTERVAL_S:
            self.redis.zadd(keys.workers(self.model), {self.worker_id: now})
            self._last_heartbeat = now

    def gather(self) -> list[bytes]:
        """Block for one message, then claim as many more as the policy allows."""
        first = self.redis.blmove(self.queue, self.in_flight, BLOCK_S, "RIGHT", "LEFT")
        if first is None:
            return []
        self._refresh_policy()
        self.first_claimed_at = time.time()
        batch = [first]
        limit = self.policy.max_batch_size
        deadline = time.monotonic() + self.policy.max_delay_s
        while len(batch) < limit:
            wanted = limit - len(batch)
            more = self._claim(keys=[self.queue, self.in_flight], args=[wanted])
            batch.extend(more)
            if len(more) == wanted:
                continue
            # The queue is empty: adaptive batches go now, others wait out the delay.
            remaining = deadline - time.monotonic()
            if self.policy.adaptive or remaining <= 0:
                break
            late = self.redis.blmove(self.queue, self.in_flight, remaining, "RIGHT", "LEFT")
            if late is None:
                break
            batch.append(late)
        return batch

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
        acks = []
        job_ids = []
        for raw in messages:
            try:
                job_ids.append((celery_message.job_id_of(raw, PREDICT_TASK), raw))
            except celery_message.MalformedMessage as exc:
                log.error("discarding a message from %s: %s", self.queue, exc)
                acks.append(raw)
        started = self.store.start_many([job_id for job_id, _ in job_ids], self.worker_id)
        groups: dict[int, list[tuple[Job, bytes]]] = defaultdict(list)
        for (job_id, raw), job in zip(job_ids, started):
            if job is None or job == ALREADY_FINISHED:
                acks.append(raw)
            else:
                groups[int(job.model_version)].append((job, raw))
        pipe = self.redis.pipeline(transaction=False)
        for version, members in groups.items():
            self._run_group(version, members, claimed_at, pipe)
            acks.extend(raw for _, raw in members)
        for raw in acks:
            pipe.lrem(self.in_flight, 1, raw)
        pipe.execute()

    def _run_group(self, version: int, members, claimed_at: float, pipe) -> None:
        jobs = [job for job, _ in members]
        try:
            model = self.registry.get_or_wait(self.model, version, self.stopping)
        except Exception as exc:
            for job in jobs:
                self.store.fail(job, type(exc).__name__, str(exc), pipeline=pipe)
            return
        inputs, runnable = [], []
        for job in jobs:
            try:
                inputs.append(model.to_batch(job))
                runnable.append(job)
            except Exception as exc:
                self.store.fail(job, type(exc).__name__, str(exc), pipeline=pipe)
        if not runnable:
            return
        pass_sizes: list[int] = []

        def predict(batch):
            pass_sizes.append(len(batch))
            return model.predict(batch)

        outcomes = run_batched(predict, inputs, self.policy.max_batch_size)
        self._record_batch_sizes(pass_sizes, pipe)
        for job, outcome in zip(runnable, outcomes):
            self._finish(job, model, outcome, claimed_at, pipe)

    def _finish(self, job: Job, model, outcome: Outcome, claimed_at: float, pipe) -> None:
        if outcome.error is None:
            try:
                predictions = model.encode(outcome.outputs)
                labels = model.top_labels(outcome.outputs)
            except Exception as exc:
                outcome.error = exc
        if outcome.error is not None:
            log.warning("job %s failed: %s: %s", job.id, type(outcome.error).__name__, outcome.error)
            self.store.fail(job, type(outcome.error).__name__, str(outcome.error)[:2000], pipeline=pipe)
            return
        timings = {
            "queued_ms": round(max(0.0, claimed_at - job.created_at) * 1000, 3),
            "batch_wait_ms": round(max(0.0, outcome.started_at - claimed_at) * 1000, 3),
            "inference_ms": round(outcome.inference_s * 1000, 3),
            "batch_size": outcome.batch_size,
        }
        self.store.succeed(job, predictions, timings=timings, pipeline=pipe, labels_json=labels)

    def _record_batch_sizes(self, sizes: list[int], pipe) -> None:
        key = keys.batch_size_histogram(self.model)
        for size in sizes:
            bucket = next((str(b) for b in BATCH_SIZE_BUCKETS if size <= b), "+Inf")
            pipe.hincrby(key, bucket, 1)
            pipe.hincrby(key, "count", 1)
            pipe.hincrby(key, "sum", size)
