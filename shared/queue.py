"""Putting jobs in their model's lanes: the record and its Celery message in one atomic step."""
from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from shared import celery_message, keys, lanes, lua, service_rate
from shared.job_store import JobStore
from shared.jobs import Job
from shared.replication import Replication
from shared.signatures import WORKER_ALIVE_S
from shared.tasks import PREDICT_TASK

DOORBELL_CAP = 64
"""Most doorbell tokens kept per model: enough to wake every idle worker, bounded under any backlog."""


class QueueFull(Exception):
    """The model already holds its cap of unfinished jobs; nothing was stored."""

    def __init__(self, model: str, backlog: int):
        super().__init__(f"model {model} has {backlog} unfinished jobs")
        self.model = model
        self.backlog = backlog


class WaitTooLong(Exception):
    """The job's estimated wait exceeds its ``max_queue_s``: refused at once, nothing stored."""

    def __init__(self, model: str, wait_s: float, max_queue_s: float):
        super().__init__(f"model {model}: estimated wait {wait_s:.1f} s exceeds max_queue_s {max_queue_s:g}")
        self.model = model
        self.wait_s = wait_s
        self.max_queue_s = max_queue_s


@dataclass(frozen=True)
class Placement:
    """Where a job stands in its model's queue: how many jobs start before it, and when it may start."""

    position: int
    eta_s: float | None
    """Seconds until it starts at the model's busy rate; None before any batch was measured."""

    def to_public(self) -> dict:
        return {"position": self.position, "eta_s": None if self.eta_s is None else round(self.eta_s, 3)}


def eta(position: int, rate: float) -> float | None:
    """Seconds for ``position`` jobs to start at ``rate`` jobs/s (``shared.service_rate``); None unmeasured."""
    return position / rate if rate > 0 else None


class JobQueue:
    """Stores a new job and places its task message in its lane atomically, in one round trip."""

    def __init__(self, redis, store: JobStore, max_queued_per_model: int = 0,
                 replication: Replication | None = None):
        self.redis = redis
        self.store = store
        self.max_queued_per_model = max(0, max_queued_per_model)
        self.replication = replication or Replication(redis, 0, 1)
        self._submit = lua.LuaScript(redis, "submit")

    def submit(self, job: Job) -> Placement:
        """Store ``job`` and place its predict message; either both happen or neither.

        Raises ``QueueFull`` when the model is at its cap, and ``WaitTooLong`` when the job's
        ``max_queue_s`` is shorter than the estimated wait; either way nothing is stored. With
        replicas required (``shared.replication``) the job is held until they confirm it, and
        ``ReplicasBehind`` is raised, the job withdrawn, when they do not.
        """
        if not self.replication.holds:
            return self._placed(job, self.send(job))
        pipe = self.redis.pipeline(transaction=False)
        self.send(job, pipe)
        self.replication.wait_in(pipe)
        reply, confirmed = pipe.execute()
        placed = self._placed(job, reply)
        self.replication.settle(job, confirmed)  # a retried submit ("exists") is settled the same way
        return placed

    def send(self, job: Job, client=None) -> list:
        """Run the submit script for ``job`` (queued in ``client``, a pipeline, when given); its reply."""
        ended, busy = service_rate.window_keys(job.model, job.created_at)
        args = {"cap": self.max_queued_per_model, "ttl": self.store.ttl_s, "model": job.model,
                "version": job.model_version, "id": job.id, "owner": job.owner or "-",
                "priority": job.priority.value, "rank": job.priority.rank, "created_at": job.created_at,
                "max_queue_s": job.max_queue_s, "deadline": job.deadline or 0, "buckets": len(ended),
                "alive_after": job.created_at - WORKER_ALIVE_S, "doorbell_cap": DOORBELL_CAP,
                "hold": self.replication.holds,
                "message": celery_message.encode(PREDICT_TASK, job.id, keys.queue(job.model)).decode()}
        fields = [part for pair in self.store.new_record(job).items() for part in pair]
        script_keys = [*submit_keys(job), *ended, *busy, keys.workers(job.model), keys.lane_held(job.model),
                       keys.QUEUE_HELD]
        return self._submit(keys=script_keys, args=[orjson.dumps(args), *fields], client=client)

    def _placed(self, job: Job, reply: list) -> Placement:
        """The submit script's answer as a placement, or the exception for a refusal."""
        outcome = reply[0].decode()
        if outcome == "full":
            raise QueueFull(job.model, int(reply[1]))
        if outcome == "busy":
            raise WaitTooLong(job.model, float(reply[1]), job.max_queue_s)
        if outcome == "exists":  # a retry of a submit that reached Redis: where it stands now
            return placement(self.redis, job)
        return Placement(int(reply[1]), eta(int(reply[1]), float(reply[2])))


def submit_keys(job: Job) -> list[str]:
    """KEYS of ``submit.lua`` before the throughput buckets."""
    lane = job.priority.value
    return [keys.job(job.id), keys.METRICS_SUBMITTED, keys.pending(job.model), keys.queue(job.model),
            keys.lane(job.model, lane), keys.lane_arrivals(job.model, lane), keys.lane_messages(job.model),
            keys.lane_owners(job.model, lane), keys.lane_clocks(job.model), keys.doorbell(job.model),
            keys.QUEUE_DEADLINES, *lanes.lane_keys(job.model)]


def placement(redis, job: Job, now: float | None = None) -> Placement:
    """Where a queued ``job`` stands now, in one round trip of O(log n) reads: the re-queued
    messages and every higher lane's jobs start before it, then its lane's lower tags. A job
    already claimed (no longer in its lane) is next. The lower lanes' share is left out, so for
    a lower lane under a flood the figure is an upper bound. Two round trips: the places, then the rate."""
    now = time.time() if now is None else now
    pipe = redis.pipeline(transaction=False)
    pipe.llen(keys.queue(job.model))
    for lane in lanes.LANES[:job.priority.rank - 1]:
        pipe.zcard(keys.lane(job.model, lane.value))
    pipe.zrank(keys.lane(job.model, job.priority.value), job.id)
    *ahead, rank = pipe.execute()
    position = 0 if rank is None else sum(ahead) + rank
    return Placement(position, eta(position, service_rate.measure(redis, job.model, now)))
