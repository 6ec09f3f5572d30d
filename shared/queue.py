"""Putting jobs on their model's queue: the record and its Celery message in one atomic step."""
from __future__ import annotations

import orjson

from shared import celery_message, keys, lua
from shared.job_store import JobStore
from shared.jobs import Job
from shared.tasks import PREDICT_TASK


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
        self._submit = lua.LuaScript(redis, "submit")

    def submit(self, job: Job) -> None:
        """Store ``job`` and LPUSH its predict message; either both happen or neither.

        Raises ``QueueFull`` (having stored nothing) when the model is at its cap.
        """
        queue = keys.queue(job.model)
        args = {"cap": self.max_queued_per_model, "ttl": self.store.ttl_s, "model": job.model,
                "version": job.model_version,
                "message": celery_message.encode(PREDICT_TASK, job.id, queue).decode()}
        fields = [part for pair in self.store.new_record(job).items() for part in pair]
        backlog = self._submit(keys=[keys.job(job.id), keys.METRICS_SUBMITTED, keys.pending(job.model), queue],
                               args=[orjson.dumps(args), *fields])
        if int(backlog) >= 0:
            raise QueueFull(job.model, int(backlog))
