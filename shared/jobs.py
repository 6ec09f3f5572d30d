"""The job record and its state machine; ``shared.job_store`` keeps it in Redis.

Celery's result backend is never consulted: this record is the only truth about a job,
so an unknown or expired id is a 404 instead of a job that looks queued forever.
"""
from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.lanes import Priority

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Upper bounds of the job latency histogram (submit to terminal state), in seconds."""


class JobStatus(enum.StrEnum):
    """Where a job is in its life: queued -> running -> succeeded | failed | canceled, or
    queued -> expired when it asked to start within ``max_queue_s`` and could not."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"

    def is_terminal(self) -> bool:
        """True once the job can no longer change."""
        return self in TERMINAL_STATUSES


PUBLIC_FIELDS = ("id", "model", "model_version", "status", "created_at", "started_at",
                 "finished_at", "predictions", "labels", "error", "timings", "attempts", "webhook", "owner",
                 "traceparent", "priority", "max_queue_s")
"""Hash fields a reader of the job needs; the stored input is left out."""

TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.EXPIRED})


def new_job_id() -> str:
    """A random, unguessable job id (UUID4)."""
    return str(uuid.uuid4())


def rfc3339(epoch: float | None) -> str | None:
    """Epoch seconds as an RFC 3339 UTC timestamp with milliseconds."""
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=UTC)
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
    traceparent: str = ""
    """The W3C trace context of the job's publish span ('' when untraced): workers and webhooks join its trace."""
    priority: Priority = Priority.NORMAL
    max_queue_s: float = 0.0
    """Start within this many seconds of submission or end ``expired`` (0: no deadline)."""
    queue: dict | None = None
    """Where a queued job stands (``{position, eta_s}``), computed when read, never stored."""

    @property
    def deadline(self) -> float | None:
        """When the job must have started by, or None without ``max_queue_s``."""
        return self.created_at + self.max_queue_s if self.max_queue_s > 0 else None

    @property
    def trace_id(self) -> str | None:
        """The id of the job's trace (the second field of its ``traceparent``), or None when untraced."""
        parts = self.traceparent.split("-")
        return parts[1] if len(parts) == 4 else None

    def to_public(self) -> dict:
        """The job as the API shows it; predictions are embedded without re-encoding."""
        body: dict[str, Any] = {
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
        if self.trace_id is not None:
            body["trace_id"] = self.trace_id
        body["priority"] = self.priority.value
        if self.max_queue_s > 0:
            body["max_queue_s"] = self.max_queue_s
        if self.queue is not None and self.status is JobStatus.QUEUED:
            body["queue"] = self.queue
        return body

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> Job:
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
            traceparent=text.get("traceparent", b"").decode(),
            priority=Priority(text.get("priority", b"normal").decode()),
            max_queue_s=float(text.get("max_queue_s", 0)),
        )


def latency_bucket(seconds: float) -> str:
    """The histogram bucket label (its upper bound) that a latency falls into."""
    for bound in LATENCY_BUCKETS_S:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"
