"""How much work a model has waiting: the one figure autoscalers and dashboards scale on.

``backlog`` counts every job routed to the model that has not ended: queued in Redis,
claimed by a worker (Celery would call these reserved or prefetched) or running. It comes
from the per-version pending counts, raised in the submit transaction and lowered in the Lua
step that ends a job, so it is exact whatever the queues look like; ``LLEN`` alone misses
everything a worker has already taken.
"""
from __future__ import annotations

import time

from shared import celery_message, keys
from shared.tasks import PREDICT_TASK


def backlog(redis, model: str) -> int:
    """Jobs routed to ``model`` that have not reached a terminal state."""
    return sum(max(0, int(count)) for count in redis.hvals(keys.pending(model)))


def oldest_queued_age_s(redis, model: str, now: float | None = None) -> float:
    """Seconds the oldest job still waiting in the model's queue has waited (0 when none).

    The queue's oldest message sits at its right end (submits push on the left); like
    SageMaker's ``ApproximateAgeOfOldestRequest``, jobs already claimed do not count.
    """
    raw = redis.lindex(keys.queue(model), -1)
    if raw is None:
        return 0.0
    try:
        job_id = celery_message.job_id_of(raw, PREDICT_TASK)
    except celery_message.MalformedMessage:
        return 0.0
    created = redis.hget(keys.job(job_id), "created_at")
    if created is None:
        return 0.0
    return max(0.0, (time.time() if now is None else now) - float(created))
