"""Putting jobs on their model's queue: the record and its Celery message in one atomic step."""
from __future__ import annotations

from shared import celery_message, keys
from shared.broker import PREDICT_TASK
from shared.jobs import Job, JobStore

# KEYS: job hash, submitted counter, pending hash, queue list.
# ARGV: queue cap (0: none), ttl, model, version, Celery message, then the record's field/value pairs.
# Returns -1 when stored, else the backlog that left no room. The cap is checked in the same
# script that counts the job, so concurrent submits can never overshoot it.
_SUBMIT = """
local cap = tonumber(ARGV[1])
if cap > 0 then
  local backlog = 0
  for _, count in ipairs(redis.call('HVALS', KEYS[3])) do
    local n = tonumber(count)
    if n > 0 then backlog = backlog + n end
  end
  if backlog >= cap then return backlog end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
redis.call('LPUSH', KEYS[4], ARGV[5])
return -1
"""


class QueueFull(Exception):
    """The model already holds its cap of unfinished jobs; nothing was stored."""

    def __init__(self, model: str, backlog: int):
        super().__init__(f"model {model} has {backlog} unfinished jobs")
        self.model = model
        self.backlog = backlog


class JobQueue:
    """Stores a new job and queues its task message atomically, in one round trip."""

    def __init__(self, redis, store: JobStore, max_queued_per_model: int = 0):
        self.redis = redis
        self.store = store
        self.max_queued_per_model = max(0, max_queued_per_model)
        self._submit = redis.register_script(_SUBMIT)

    def submit(self, job: Job) -> None:
        """Store ``job`` and LPUSH its predict message; either both happen or neither.

        Raises ``QueueFull`` (having stored nothing) when the model is at its cap.
        """
        queue = keys.queue(job.model)
        fields = [part for pair in self.store.new_record(job).items() for part in pair]
        backlog = self._submit(
            keys=[keys.job(job.id), keys.METRICS_SUBMITTED, keys.pending(job.model), queue],
            args=[self.max_queued_per_model, self.store.ttl_s, job.model, job.model_version,
                  celery_message.encode(PREDICT_TASK, job.id, queue), *fields])
        if int(backlog) >= 0:
            raise QueueFull(job.model, int(backlog))

    def requeue(self, job_id: str, model: str, pipeline=None) -> None:
        """Queue (again) the predict message for an existing job."""
        queue = keys.queue(model)
        target = pipeline if pipeline is not None else self.redis
        target.lpush(queue, celery_message.encode(PREDICT_TASK, job_id, queue))
