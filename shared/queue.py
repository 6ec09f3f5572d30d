"""Putting jobs on their model's queue: the record and its Celery message in one MULTI."""
from __future__ import annotations

from shared import celery_message, keys
from shared.broker import PREDICT_TASK
from shared.jobs import Job, JobStore


class JobQueue:
    """Stores a new job and queues its task message atomically, in one round trip."""

    def __init__(self, redis, store: JobStore):
        self.redis = redis
        self.store = store

    def submit(self, job: Job) -> None:
        """Store ``job`` and LPUSH its predict message; either both happen or neither."""
        pipe = self.redis.pipeline(transaction=True)
        self.store.create(job, pipe)
        self.requeue(job.id, job.model, pipe)
        pipe.execute()

    def requeue(self, job_id: str, model: str, pipeline=None) -> None:
        """Queue (again) the predict message for an existing job."""
        queue = keys.queue(model)
        target = pipeline if pipeline is not None else self.redis
        target.lpush(queue, celery_message.encode(PREDICT_TASK, job_id, queue))
