"""The job record, its state machine, and the store that keeps it in Redis.

Celery's result backend is never consulted: this record is the only truth about a job,
so an unknown or expired id is a 404 instead of a job that looks queued forever.
Transitions run as Lua scripts so a redelivered task can never overwrite a final result.
"""
from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

import orjson

from shared import keys, throughput, webhooks

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds of the job latency histogram (submit to terminal state), in seconds."""


class JobStatus(str, enum.Enum):
    """Where a job is in its life: queued -> running -> succeeded | failed | canceled."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def is_terminal(self) -> bool:
        """True once the job can no longer change."""
        return self in TERMINAL_STATUSES


PUBLIC_FIELDS = ("id", "model", "model_version", "status", "created_at", "started_at",
                 "finished_at", "predictions", "labels", "error", "timings", "attempts", "webhook", "owner")
"""Hash fields a reader of the job needs; the stored input is left out."""

TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


def new_job_id() -> str:
    """A random, unguessable job id (UUID4)."""
    return str(uuid.uuid4())


def rfc3339(epoch: float | None) -> str | None:
    """Epoch seconds as an RFC 3339 UTC timestamp with milliseconds."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    """One inference job as stored in Redis. ``instances`` and ``predictions`` stay raw JSON."""

    id: str
    model: str
    model_version: str
    status: JobStatus = JobStatus.QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    instances_json: bytes = b"[]"
    input_npy: bytes | None = None
    predictions_json: bytes | None = None
    labels_json: bytes | None = None
    """Top-k ``{label, score}`` per instance, for models whose inferq.yaml names labels."""
    error: dict | None = None
    attempts: int = 0
    timings: dict | None = None
    webhook: dict | None = None
    owner: str = ""

    def wants_event(self, event: str) -> bool:
        """True when the job's webhook asked for ``event``."""
        return self.webhook is not None and event in self.webhook.get("events", ())

    def to_public(self) -> dict:
        """The job as the API shows it; predictions are embedded without re-encoding."""
        body = {
            "id": self.id,
            "model": self.model,
            "model_version": self.model_version,
            "status": self.status.value,
            "created_at": rfc3339(self.created_at),
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
        }
        if self.status is JobStatus.SUCCEEDED and self.predictions_json is not None:
            body["predictions"] = orjson.Fragment(self.predictions_json)
            if self.labels_json is not None:
                body["labels"] = orjson.Fragment(self.labels_json)
        if self.error is not None:
            body["error"] = self.error
        if self.timings is not None:
            body["timings"] = self.timings
        if self.webhook is not None:
            body["webhook"] = self.webhook
        return body

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> "Job":
        """Rebuild a job from the fields of its Redis hash."""
        text = {k.decode(): v for k, v in raw.items()}

        def epoch(name):
            value = text.get(name)
            return float(value) if value else None

        return cls(
            id=text["id"].decode(),
            model=text["model"].decode(),
            model_version=text["model_version"].decode(),
            status=JobStatus(text["status"].decode()),
            created_at=float(text["created_at"]),
            started_at=epoch("started_at"),
            finished_at=epoch("finished_at"),
            instances_json=text.get("instances", b"[]"),
            input_npy=text.get("input_npy"),
            predictions_json=text.get("predictions"),
            labels_json=text.get("labels"),
            error=orjson.loads(text["error"]) if text.get("error") else None,
            attempts=int(text.get("attempts", 0)),
            timings=orjson.loads(text["timings"]) if text.get("timings") else None,
            webhook=orjson.loads(text["webhook"]) if text.get("webhook") else None,
            owner=text.get("owner", b"").decode(),
        )


# KEYS[1] job hash. ARGV: worker, now. Returns the record (flat field/value list) after
# moving it to running, {-1} when it had already ended, and an empty list when it is gone.
_START = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {} end
if status ~= 'queued' and status ~= 'running' then return {-1} end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[2], 'worker', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return redis.call('HGETALL', KEYS[1])
"""

ALREADY_FINISHED = "already-finished"
"""What ``start`` reports for a job that reached a terminal state before (a redelivery)."""

# KEYS: job hash, finished-metrics hash, latency hash, webhook queue, pending hash,
# throughput bucket, outstanding webhooks, recent failures. ARGV:
# status, now, bucket, latency, channel, job id, metric label, webhook message ('' for
# none), then field/value pairs. Returns 1 if it moved the job. The version's pending count
# drops here, once per job, because only the first terminal transition gets this far. The webhook is queued in the same
# step as the transition, so a finished job never lacks its delivery. The input is
# dropped: it can be megabytes, and no one reads it once the job has ended.
_FINISH = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
if status ~= 'queued' and status ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'finished_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'instances', 'input_npy')
local version = redis.call('HGET', KEYS[1], 'model_version')
if version then redis.call('HINCRBY', KEYS[5], version, -1) end
redis.call('INCR', KEYS[6])
redis.call('EXPIRE', KEYS[6], 120)
for i = 9, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[1] == 'failed' then
  local failure = cjson.encode({id = ARGV[6], model = redis.call('HGET', KEYS[1], 'model'),
                                error = redis.call('HGET', KEYS[1], 'error'), at = tonumber(ARGV[2])})
  redis.call('LPUSH', KEYS[8], failure)
  redis.call('LTRIM', KEYS[8], 0, 19)
end
if ARGV[8] ~= '' then
  redis.call('LPUSH', KEYS[4], ARGV[8])
  redis.call('ZADD', KEYS[7], ARGV[2], ARGV[6] .. '|completed')
end
redis.call('HINCRBY', KEYS[2], ARGV[7], 1)
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
redis.call('HINCRBY', KEYS[3], 'count', 1)
redis.call('HINCRBYFLOAT', KEYS[3], 'sum', ARGV[4])
redis.call('PUBLISH', ARGV[5], ARGV[6])
return 1
"""


def latency_bucket(seconds: float) -> str:
    """The histogram bucket label (its upper bound) that a latency falls into."""
    for bound in LATENCY_BUCKETS_S:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


class JobStore:
    """Reads and moves job records. The Redis client is passed in, never global."""

    def __init__(self, redis, ttl_s: int):
        self.redis = redis
        self.ttl_s = ttl_s
        self._start = redis.register_script(_START)
        self._finish = redis.register_script(_FINISH)

    def create(self, job: Job, pipeline=None) -> None:
        """Store a new queued job with its TTL and count the submission."""
        pipe = pipeline if pipeline is not None else self.redis.pipeline(transaction=True)
        pipe.hset(keys.job(job.id), mapping=self.new_record(job))
        pipe.expire(keys.job(job.id), self.ttl_s)
        pipe.hincrby(keys.METRICS_SUBMITTED, job.model, 1)
        pipe.hincrby(keys.pending(job.model), job.model_version, 1)
        if pipeline is None:
            pipe.execute()

    @staticmethod
    def new_record(job: Job) -> dict:
        """The hash fields of a job that has just been submitted."""
        record = {
            "id": job.id,
            "model": job.model,
            "model_version": job.model_version,
            "status": job.status.value,
            "created_at": repr(job.created_at),
            "attempts": 0,
        }
        if job.webhook is not None:
            record["webhook"] = orjson.dumps(job.webhook)
        if job.owner:
            record["owner"] = job.owner
        if job.input_npy is not None:
            record["input_npy"] = job.input_npy
        else:
            record["instances"] = job.instances_json
        return record

    def get(self, job_id: str) -> Job | None:
        """The job, or None when the id is unknown or expired."""
        raw = self.redis.hgetall(keys.job(job_id))
        return Job.from_hash(raw) if raw else None

    def get_public(self, job_id: str) -> Job | None:
        """The job without its input, which can be megabytes and is never shown."""
        values = self.redis.hmget(keys.job(job_id), PUBLIC_FIELDS)
        if values[0] is None:
            return None
        return Job.from_hash({name.encode(): value for name, value in zip(PUBLIC_FIELDS, values)
                              if value is not None})

    def get_status(self, job_id: str) -> JobStatus | None:
        """Only the status; cheap enough to call while waiting."""
        raw = self.redis.hget(keys.job(job_id), "status")
        return JobStatus(raw.decode()) if raw else None

    def start(self, job_id: str, worker: str):
        """Mark the job running and return it; ``ALREADY_FINISHED``, or None when it is gone."""
        return self.start_many([job_id], worker)[0]

    def start_many(self, job_ids: list[str], worker: str) -> list:
        """``start`` for a whole batch in one round trip, then queue any ``started`` webhooks."""
        now = repr(time.time())
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            self._start(keys=[keys.job(job_id)], args=[worker, now], client=pipe)
        started = [_started(reply) for reply in pipe.execute()]
        announce = [job for job in started if isinstance(job, Job) and job.wants_event("started")]
        if announce:
            pipe = self.redis.pipeline(transaction=False)
            for job in announce:
                pipe.set(keys.webhook_open(job.id, "started"), 1, ex=self.ttl_s)
                pipe.lpush(webhooks.WEBHOOK_QUEUE, webhooks.delivery_message(job.id, "started"))
                pipe.zadd(keys.WEBHOOK_OUTSTANDING, {webhooks.outstanding_member(job.id, "started"): time.time()})
            pipe.execute()
        return started

    def succeed(self, job: Job, predictions_json: bytes, timings: dict | None = None,
                pipeline=None, labels_json: bytes | None = None) -> bool:
        """Store the predictions and end the job; False if it had already ended.

        With a pipeline the write is only queued, and the return value is meaningless.
        """
        extra = {"predictions": predictions_json}
        if labels_json is not None:
            extra["labels"] = labels_json
        if timings is not None:
            extra["timings"] = orjson.dumps(timings)
        return self._end(job, JobStatus.SUCCEEDED, extra, pipeline)

    def fail(self, job: Job, error_type: str, message: str, pipeline=None) -> bool:
        """End the job as failed with a typed error; False if it had already ended."""
        error = orjson.dumps({"type": error_type, "message": message})
        return self._end(job, JobStatus.FAILED, {"error": error}, pipeline)

    def cancel(self, job: Job) -> bool:
        """End a queued or running job as canceled (a running job's result will be dropped)."""
        return self._end(job, JobStatus.CANCELED, {})

    def _end(self, job: Job, status: JobStatus, extra: dict[str, bytes], pipeline=None) -> bool:
        now = time.time()
        latency = max(0.0, now - job.created_at)
        delivery = b""
        if job.wants_event("completed"):
            delivery = webhooks.delivery_message(job.id, "completed")
        args = [status.value, repr(now), latency_bucket(latency), repr(latency),
                keys.JOB_FINISHED_CHANNEL, job.id, f"{job.model}|{status.value}", delivery]
        for name, value in extra.items():
            args.extend([name, value])
        moved = self._finish(
            keys=[keys.job(job.id), keys.METRICS_FINISHED, keys.latency_histogram(job.model),
                  webhooks.WEBHOOK_QUEUE, keys.pending(job.model), throughput.bucket_key(job.model, now),
                  keys.WEBHOOK_OUTSTANDING, keys.RECENT_FAILURES],
            args=args,
            client=pipeline if pipeline is not None else self.redis,
        )
        return moved == 1


def _started(reply):
    if not reply:
        return None
    if reply == [-1]:
        return ALREADY_FINISHED
    return Job.from_hash(dict(zip(reply[::2], reply[1::2])))
