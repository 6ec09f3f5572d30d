"""The one code path that runs jobs and records their end, in both worker modes.

The batching consumer hands it every job of a claimed batch; a prefork task hands it one.
Either way the jobs are started in one round trip, grouped by model version, run in as few
forward passes as the batch policy allows, and ended with the same fields and metrics.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import orjson

from shared import keys, service_rate, throughput
from shared.celery_message import TaskMessage
from shared.job_store import JobStore, StartOutcome
from shared.jobs import Job
from shared.keys import BATCH_SIZE_BUCKETS
from shared.settings import Settings
from workers.inference.batching import Outcome, run_batched
from workers.inference.job_spans import RunSpans, inference
from workers.inference.registry import ModelRegistry

log = logging.getLogger(__name__)

RECENT_TIMINGS = 500
"""Finished jobs whose timings the dashboard's latency percentiles are drawn from."""


def lost_message(times: int) -> str:
    """The error of a job whose worker died under it ``times`` times."""
    return (f"worker lost {times} times: the process running this job died each time "
            "(a poison input, or the machine); not retried again")


class JobRunner:
    """Runs claimed jobs of one worker; every write of a job's end goes into the caller's pipeline."""

    def __init__(self, store: JobStore, registry: ModelRegistry, settings: Settings, worker_id: str,
                 stopping: threading.Event | None = None):
        self.store = store
        self.registry = registry
        self.settings = settings
        self.worker_id = worker_id
        self.stopping = stopping or threading.Event()

    def run(self, messages: list[TaskMessage], claimed_at: float | None, max_batch_size: int, pipe) -> None:
        """Start, run and end the jobs behind ``messages``; a redelivered or expired one is skipped.

        ``claimed_at`` is when the first of them was taken off the queue: time after it, up
        to the forward pass, is each job's batch wait. None when that moment is unknown
        (Celery's own consumer took the message, at a time it does not tell): the job then
        ends without timings rather than with made-up ones.
        """
        spans = RunSpans(messages, claimed_at)
        began = time.monotonic()
        try:
            groups = self._start(messages, spans, pipe)
            for (model_name, version), jobs in groups.items():
                self._run_version(model_name, version, jobs, claimed_at, max_batch_size, pipe, spans)
        finally:
            spans.close()
        _record_busy({name for name, _ in groups}, time.monotonic() - began, pipe)

    def _start(self, messages: list[TaskMessage], spans: RunSpans, pipe) -> dict[tuple[str, int], list[Job]]:
        """Start every job in one round trip; the runnable ones grouped by model version."""
        groups: dict[tuple[str, int], list[Job]] = defaultdict(list)
        for message, start in zip(messages, self.store.start_many([m.job_id for m in messages], self.worker_id),
                                  strict=True):
            job = start.job
            if start.outcome is StartOutcome.PAST_DEADLINE:
                self._expire(message.job_id, pipe)
            if start.outcome is not StartOutcome.STARTED or job is None:
                spans.not_started(message.job_id, start.outcome)
                continue
            spans.started(job)
            if job.attempts > self.settings.max_attempts:  # lost that often, re-queued by a reconciler
                self.store.fail(job, "WorkerLost", lost_message(job.attempts - 1), pipeline=pipe)
                spans.failed(job.id, "WorkerLost", lost_message(job.attempts - 1))
            else:
                groups[(job.model, int(job.model_version))].append(job)
        return groups

    def _expire(self, job_id: str, pipe) -> None:
        """End a claimed job that reached its ``max_queue_s`` unstarted, rather than wait for the sweep."""
        job = self.store.get_public(job_id)
        if job is not None:
            self.store.expire(job, pipeline=pipe)

    def _run_version(self, model_name: str, version: int, jobs: list[Job], claimed_at: float | None,
                     max_batch_size: int, pipe, spans: RunSpans) -> None:
        try:
            model = self.registry.get_or_wait(model_name, version, self.stopping)
        except Exception as exc:
            for job in jobs:
                self._fail(job, exc, pipe, spans)
            return
        inputs, runnable = [], []
        for job in jobs:
            try:
                inputs.append(model.to_batch(job))
                runnable.append(job)
            except Exception as exc:
                self._fail(job, exc, pipe, spans)
        if not runnable:
            return
        pass_sizes: list[int] = []

        def predict(batch):
            pass_sizes.append(len(batch))
            with inference(model_name, version, len(batch)):
                return model.predict(batch)

        with spans.batch(model_name, version, runnable):
            outcomes = run_batched(predict, inputs, max_batch_size)
        _record_batch_sizes(model_name, pass_sizes, pipe)
        for job, outcome in zip(runnable, outcomes, strict=True):
            self._finish(job, model, outcome, claimed_at, pipe, spans)

    def _fail(self, job: Job, error: Exception, pipe, spans: RunSpans) -> None:
        log.warning("job %s failed: %s: %s", job.id, type(error).__name__, error)
        self.store.fail(job, type(error).__name__, str(error), pipeline=pipe)
        spans.failed(job.id, type(error).__name__, str(error))

    def _finish(self, job: Job, model, outcome: Outcome, claimed_at: float | None, pipe, spans: RunSpans) -> None:
        if outcome.error is None:
            try:
                predictions = model.encode(outcome.outputs)
                labels = model.top_labels(outcome.outputs)
            except Exception as exc:
                outcome.error = exc
        if outcome.error is not None:
            self._fail(job, outcome.error, pipe, spans)
            return
        if claimed_at is None:
            self.store.succeed(job, predictions, pipeline=pipe, labels_json=labels)
            spans.succeeded(job.id, None)
            return
        timings = {
            "queued_ms": round(max(0.0, claimed_at - job.created_at) * 1000, 3),
            "batch_wait_ms": round(max(0.0, outcome.started_at - claimed_at) * 1000, 3),
            "inference_ms": round(outcome.inference_s * 1000, 3),
            "batch_size": outcome.batch_size,
        }
        self.store.succeed(job, predictions, timings=timings, pipeline=pipe, labels_json=labels)
        spans.succeeded(job.id, timings)
        timings["latency_ms"] = round(max(0.0, time.time() - job.created_at) * 1000, 3)
        pipe.lpush(keys.recent_timings(job.model), orjson.dumps(timings))
        pipe.ltrim(keys.recent_timings(job.model), 0, RECENT_TIMINGS - 1)


def _record_busy(models: set[str], seconds: float, pipe) -> None:
    """Count the batch's wall time towards its models' busy rate (``shared.service_rate``)."""
    now = time.time()
    for name in models:
        key = service_rate.busy_key(name, now)
        pipe.incrbyfloat(key, seconds / len(models))
        pipe.expire(key, throughput.BUCKET_TTL_S)


def _record_batch_sizes(model_name: str, sizes: list[int], pipe) -> None:
    key = keys.batch_size_histogram(model_name)
    for size in sizes:
        bucket = next((str(b) for b in BATCH_SIZE_BUCKETS if size <= b), "+Inf")
        pipe.hincrby(key, bucket, 1)
        pipe.hincrby(key, "count", 1)
        pipe.hincrby(key, "sum", size)
