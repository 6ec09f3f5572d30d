"""The store that reads job records and moves them through their states in Redis.

Every transition is a Lua script (``shared/lua/``), so a redelivered task can never
overwrite a final result, and the webhook a transition owes is queued in the same step.
"""
from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass

import orjson

from shared import keys, lua, throughput
from shared.jobs import LATENCY_BUCKETS_S, PUBLIC_FIELDS, Job, JobStatus, latency_bucket
from shared.lanes import Priority
from shared.outbox import Delivery
from shared.webhooks import WebhookEvent

ERROR_MESSAGE_LIMIT = 2000
"""Longest error message stored on a failed job (an exception's text can be megabytes)."""

RECENT_FAILURES_KEPT = 20
"""Failed jobs the dashboard lists (``keys.RECENT_FAILURES``)."""


WAIT_BUCKET_ARGS = {"wait_bounds": list(LATENCY_BUCKETS_S), "wait_labels": [repr(b) for b in LATENCY_BUCKETS_S]}
"""The submit-to-start histogram's bounds, as ``start.lua`` reads them."""


class StartOutcome(enum.Enum):
    """What asking to start a job found."""

    STARTED = "started"
    """Moved to running (a redelivered running job is started again): run it."""
    ALREADY_FINISHED = "already-finished"
    """It had ended before: a redelivery to acknowledge and skip."""
    GONE = "gone"
    """No record: its TTL ran out, or it never existed."""
    PAST_DEADLINE = "past-deadline"
    """Still queued after its ``max_queue_s``: never started; the worker that claimed it ends it ``expired``."""


@dataclass(frozen=True)
class Start:
    """The outcome of one start, with the job when it was started."""

    outcome: StartOutcome
    job: Job | None = None


class JobStore:
    """Reads and moves job records. The Redis client is passed in, never global."""

    def __init__(self, redis, ttl_s: int):
        self.redis = redis
        self.ttl_s = ttl_s
        self._start = lua.LuaScript(redis, "start")
        self._finish = lua.LuaScript(redis, "finish")

    @staticmethod
    def new_record(job: Job) -> dict:
        """The hash fields of a job that has just been submitted."""
        record: dict[str, str | int | bytes] = {
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
        if job.traceparent:
            record["traceparent"] = job.traceparent
        if job.priority is not Priority.NORMAL:
            record["priority"] = job.priority.value
        if job.deadline is not None:
            record["max_queue_s"] = repr(job.max_queue_s)
            record["deadline"] = repr(job.deadline)
        if job.input_npy is not None:
            record["input_npy"] = job.input_npy
        else:
            record["instances"] = job.instances_json
        return record

    def get(self, job_id: str) -> Job | None:
        """The job with its input (what a worker runs), or None when unknown or expired."""
        raw = self.redis.hgetall(keys.job(job_id))
        return Job.from_hash(raw) if raw else None

    def get_public(self, job_id: str) -> Job | None:
        """The job without its input, which can be megabytes and is never shown."""
        return self._public_fields(keys.job(job_id))

    def get_event_snapshot(self, job_id: str, event: WebhookEvent) -> Job | None:
        """The job as it was when ``event`` happened (see ``keys.webhook_event``)."""
        if event is WebhookEvent.COMPLETED:
            job = self.get_public(job_id)
            return job if job is not None and job.status.is_terminal() else None
        return self._public_fields(keys.webhook_event(job_id, event.value))

    def _public_fields(self, key: str) -> Job | None:
        values = self.redis.hmget(key, PUBLIC_FIELDS)
        if values[0] is None:
            return None
        return Job.from_hash({name.encode(): value for name, value in zip(PUBLIC_FIELDS, values, strict=True)
                              if value is not None})

    def get_status(self, job_id: str) -> JobStatus | None:
        """Only the status; cheap enough to call while waiting."""
        raw = self.redis.hget(keys.job(job_id), "status")
        return JobStatus(raw.decode()) if raw else None

    def start(self, job_id: str, worker: str) -> Start:
        """Mark the job running (queuing its ``started`` webhook on the first start)."""
        return self.start_many([job_id], worker)[0]

    def start_many(self, job_ids: list[str], worker: str) -> list[Start]:
        """``start`` for a whole batch in one round trip."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            delivery = Delivery(job_id, WebhookEvent.STARTED)
            args = {**delivery.script_args(now, self.ttl_s), "worker": worker, "fields": PUBLIC_FIELDS,
                    "id": job_id, **WAIT_BUCKET_ARGS}
            self._start(keys=[keys.job(job_id), keys.webhook_event(job_id, "started"), *delivery.keys(),
                              keys.QUEUE_DEADLINES, keys.QUEUE_WAIT_HISTOGRAM],
                        args=[orjson.dumps(args)], client=pipe)
        return [_start_of(reply) for reply in pipe.execute()]

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
        error = orjson.dumps({"type": error_type, "message": message[:ERROR_MESSAGE_LIMIT]})
        return self._end(job, JobStatus.FAILED, {"error": error}, pipeline)

    def cancel(self, job: Job) -> bool:
        """End a queued or running job as canceled (a running job's result will be dropped)."""
        return self._end(job, JobStatus.CANCELED, {})

    def expire(self, job: Job, now: float | None = None, pipeline=None) -> bool:
        """End a job that is still queued at its ``max_queue_s`` deadline; False once it has started."""
        waited = (time.time() if now is None else now) - job.created_at
        error = orjson.dumps({"type": "QueueTimeout",
                              "message": f"not started within max_queue_s={job.max_queue_s:g} s "
                                         f"(queued {waited:.1f} s); it never ran"})
        return self._end(job, JobStatus.EXPIRED, {"error": error}, pipeline)

    def _end(self, job: Job, status: JobStatus, extra: dict[str, bytes], pipeline=None) -> bool:
        now = time.time()
        latency = max(0.0, now - job.created_at)
        delivery = Delivery(job.id, WebhookEvent.COMPLETED)
        args = {"status": status.value, "now": repr(now), "bucket": latency_bucket(latency),
                "announcement": _announcement(job, status, now, extra),
                "started_at": "" if job.started_at is None else repr(job.started_at),
                "latency": repr(latency), "channel": keys.JOB_FINISHED_CHANNEL, "job_id": job.id,
                "metric_label": f"{job.model}|{status.value}", "recent_failures": RECENT_FAILURES_KEPT,
                "only_queued": status is JobStatus.EXPIRED,
                **(delivery.script_args(now, self.ttl_s) if job.webhook is not None else {})}
        fields = [part for pair in extra.items() for part in pair]
        moved = self._finish(
            keys=[keys.job(job.id), keys.METRICS_FINISHED, keys.latency_histogram(job.model),
                  delivery.keys()[0], keys.pending(job.model), throughput.bucket_key(job.model, now),
                  keys.WEBHOOK_OUTSTANDING, keys.RECENT_FAILURES, delivery.keys()[2],
                  keys.lane(job.model, job.priority.value), keys.lane_arrivals(job.model, job.priority.value),
                  keys.lane_messages(job.model), keys.QUEUE_DEADLINES],
            args=[orjson.dumps(args), *fields],
            client=pipeline if pipeline is not None else self.redis,
        )
        return moved == 1


ANNOUNCEMENT_LIMIT = 64 * 1024
"""Largest finished job announced whole on the job-finished channel; a bigger one is announced
by id, and its long-polls read it from Redis (every web process receives every announcement)."""


def _announcement(job: Job, status: JobStatus, now: float, extra: dict[str, bytes]) -> str:
    """The job as ``GET /v1/jobs/{id}`` will show it once this step has stored it, so a request
    waiting on it can answer without reading it back; '' when it is too big to announce."""
    final = dataclasses.replace(
        job, status=status, finished_at=now, predictions_json=extra.get("predictions", job.predictions_json),
        labels_json=extra.get("labels", job.labels_json),
        error=orjson.loads(extra["error"]) if "error" in extra else job.error,
        timings=orjson.loads(extra["timings"]) if "timings" in extra else job.timings)
    public = orjson.dumps(final.to_public())
    return public.decode() if len(public) <= ANNOUNCEMENT_LIMIT else ""


def _start_of(reply) -> Start:
    if not reply:
        return Start(StartOutcome.GONE)
    if reply == [-1]:
        return Start(StartOutcome.ALREADY_FINISHED)
    if reply == [-2]:
        return Start(StartOutcome.PAST_DEADLINE)
    return Start(StartOutcome.STARTED, Job.from_hash(dict(zip(reply[::2], reply[1::2], strict=True))))
