"""Writes the replicas must confirm before they count: ``INFERQ_REDIS_MIN_REPLICAS`` and ``WAIT``.

Redis replicates asynchronously, so a primary lost right after a write may take it along. A
write confirmed by ``WAIT min_replicas`` lives on that many replicas too, and Sentinel promotes
the replica with the most of the primary's history, so it survives the failover.

A submit is therefore held: ``submit.lua`` stores the job in the model's held set, where no
worker can claim it; ``WAIT`` runs in the same round trip; then the job is either released into
its lane (the API answers 202) or, when the replicas did not confirm in time, withdrawn: the
record is deleted, and the API answers 503 with ``Retry-After``. Withdrawn rather than marked,
because a job that was refused must never run, and one that never existed cannot. A job whose
web process died between the two steps stays held; the webhook worker's sweep releases it once
it is older than ``STALE_HOLD_S``: its client may have had its 202, so running it is the side
that loses nothing. The finish step and the webhook writes wait too (``execute``), but they
cannot be refused: a worker whose finish went unconfirmed moves on, and should the primary then
be lost, the new one still holds the job in that worker's in-flight list, so it runs again
(same ``webhook-id``).
"""
from __future__ import annotations

import logging
import time

from shared import keys, lua
from shared.jobs import Job

log = logging.getLogger(__name__)

STALE_HOLD_S = 10.0
"""A hold older than this was abandoned (its web process died mid-submit) and is released."""


class ReplicasBehind(Exception):
    """Fewer replicas than required confirmed a job's write in time; the job was withdrawn."""

    def __init__(self, wanted: int, confirmed: int, wait_ms: int):
        super().__init__(f"{confirmed} of the {wanted} required Redis replica(s) confirmed the job within {wait_ms} ms")
        self.wanted = wanted
        self.confirmed = confirmed


class Replication:
    """How many replicas confirm a write, and how long to wait for them."""

    def __init__(self, redis, min_replicas: int, wait_ms: int):
        self.min_replicas = max(0, min_replicas)
        self.wait_ms = max(1, wait_ms)
        self._release = lua.LuaScript(redis, "release")
        self._withdraw = lua.LuaScript(redis, "withdraw")

    @property
    def holds(self) -> bool:
        """Whether submits are held until confirmed."""
        return self.min_replicas > 0

    def wait_in(self, pipe) -> None:
        """Append ``WAIT`` to ``pipe``: its last reply is the count of replicas that confirmed."""
        pipe.wait(self.min_replicas, self.wait_ms)

    def execute(self, pipe, step: str) -> list:
        """Run a non-transactional ``pipe`` of ``step``'s writes, then wait for the replicas on the
        same connection (``WAIT`` counts only that connection's writes). A shortfall is logged, not
        raised: these writes cannot be refused, and what they lose in a failover is done again."""
        if not self.holds:
            return pipe.execute()
        self.wait_in(pipe)
        *replies, confirmed = pipe.execute()
        self.confirmed(confirmed, step)
        return replies

    def confirmed(self, count: int, step: str) -> bool:
        """Whether ``count`` replicas is enough; logs a shortfall of ``step``."""
        if count >= self.min_replicas:
            return True
        log.warning("%s: %d of %d Redis replica(s) confirmed within %d ms", step, count, self.min_replicas,
                    self.wait_ms)
        return False

    def settle(self, job: Job, confirmed: int) -> None:
        """Release a held ``job`` into its lane, or withdraw it and raise ``ReplicasBehind``."""
        if confirmed >= self.min_replicas:
            release(self._release, job.id, job.model, job.priority.value)
            return
        self._withdraw(keys=[keys.lane_held(job.model), keys.QUEUE_HELD, keys.job(job.id),
                             keys.lane_messages(job.model), keys.lane_arrivals(job.model, job.priority.value),
                             keys.QUEUE_DEADLINES, keys.METRICS_SUBMITTED, keys.pending(job.model)],
                       args=[job.id, job.model, job.model_version])
        raise ReplicasBehind(self.min_replicas, confirmed, self.wait_ms)

    def release_stale(self, redis, now: float | None = None, older_than_s: float = STALE_HOLD_S) -> int:
        """Release holds their web process never settled; returns how many jobs went into a lane."""
        now = time.time() if now is None else now
        released = 0
        for raw in redis.zrangebyscore(keys.QUEUE_HELD, "-inf", now - older_than_s, start=0, num=500):
            job_id = raw.decode()
            model, priority = redis.hmget(keys.job(job_id), "model", "priority")
            if model is None:
                redis.zrem(keys.QUEUE_HELD, raw)
                continue
            released += release(self._release, job_id, model.decode(), (priority or b"normal").decode())
        return released


def online_replicas(redis) -> int:
    """Replicas of the primary that are connected and in sync (``INFO replication``)."""
    info = redis.info("replication")
    return sum(1 for name, value in info.items()
               if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online")


def release(script: lua.LuaScript, job_id: str, model: str, priority: str) -> bool:
    """Move a held job into its lane; False when it was no longer held or had ended."""
    from shared.queue import DOORBELL_CAP

    return bool(script(keys=[keys.lane_held(model), keys.QUEUE_HELD, keys.lane(model, priority),
                             keys.doorbell(model), keys.job(job_id)], args=[job_id, DOORBELL_CAP]))

