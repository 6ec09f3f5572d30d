"""A job as its owner sees it: read it, wait for it, cancel it, or send its webhook again.

Another key's job looks exactly like an unknown one (404), so ids cannot be probed.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable

import orjson

from shared.errors import Conflict, GatewayTimeout, ModelFailed, NotFound, Unavailable
from shared.jobs import Job, JobStatus
from shared.outbox import Delivery
from shared.queue import placement
from shared.webhooks import WebhookEvent
from web.auth import current_owner
from web.services import services


def raise_unless_succeeded(done: Job, waited_s: float) -> None:
    """For the calls that wait for their job (``:predict``, v2 infer): 504 with ``Location``
    while it still runs, 409 if canceled, the model's error (422) if it failed."""
    location = f"/v1/jobs/{done.id}"
    if not done.status.is_terminal():
        raise GatewayTimeout(f"job {done.id} did not finish within {waited_s:g} s; "
                             f"it is still {done.status.value}: poll {location}",
                             error="Deadline exceeded", job_id=done.id, location=location)
    if done.status is JobStatus.EXPIRED:
        raise Unavailable(f"job {done.id} expired: it could not start within its max_queue_s",
                          retry_after=1, error="QueueTimeout", job_id=done.id)
    if done.status is JobStatus.CANCELED:
        raise Conflict(f"job {done.id} was canceled", error="Cancelled", job_id=done.id)
    if done.status is JobStatus.FAILED:
        message = f"{done.error.get('type')}: {done.error.get('message')}" if done.error else "failed"
        raise ModelFailed(message, error=message, job_id=done.id)


JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
"""What ``new_job_id`` makes (a UUID4): anything else cannot name a job, and is never looked up."""


def require_job(job_id: str) -> Job:
    """The job as its owner sees it; 404 when it does not exist or belongs to another key."""
    if not JOB_ID.match(job_id):
        raise NotFound(f"{job_id[:80]!r} is not a job id")
    job = services().store.get_public(job_id)
    if job is None or job.owner != current_owner():
        raise NotFound(f"job {job_id!r} does not exist or has expired")
    return job


def with_place(job: Job) -> Job:
    """``job``, with where it stands in its model's queue while it is queued (``queue``)."""
    if job.status is JobStatus.QUEUED:
        job.queue = placement(services().redis, job).to_public()
    return job


def is_finished(job_id: str) -> Callable[[], bool]:
    """A cheap check (the status alone) for the waiter to re-run while it waits."""
    store = services().store

    def finished() -> bool:
        status = store.get_status(job_id)
        return status is None or status.is_terminal()

    return finished


def wait_for_job_json(job_id: str, wait_s: float) -> bytes:
    """The job's JSON once it has ended, or as it is after ``wait_s`` seconds (404 at once for
    unknown ids and other keys' jobs). When it ends during the wait, the answer is the finish's
    own announcement, so a long-poll reads the job from Redis once, not twice."""
    job = require_job(job_id)
    if wait_s <= 0 or job.status.is_terminal():
        return orjson.dumps(with_place(job).to_public())
    waiter = services().waiter
    with waiter.watching(job_id) as watch:
        waiter.wait_on(watch, wait_s, is_finished(job_id))
    return watch.announced or orjson.dumps(with_place(require_job(job_id)).to_public())


def cancel_job(job_id: str) -> Job:
    """Cancel a queued or running job (its completed webhook fires); 409 once it has ended."""
    job = require_job(job_id)
    if job.status.is_terminal() or not services().store.cancel(job):
        raise Conflict(f"job {job_id} has already finished ({require_job(job_id).status.value})")
    return require_job(job_id)


def redeliver_completed(job_id: str) -> Delivery:
    """Queue the ended job's ``completed`` event again, under the same ``webhook-id``."""
    job = require_job(job_id)
    if job.webhook is None:
        raise Conflict("the job has no webhook")
    if not job.status.is_terminal():
        raise Conflict(f"the job is {job.status.value}; only a finished job's event can be redelivered")
    svc, now = services(), time.time()
    svc.redeliveries_per_key.check(f"redeliver:{job.owner}", now)
    svc.redeliveries_per_job.check(f"redeliver-job:{job_id}", now)
    delivery = Delivery(job_id, WebhookEvent.COMPLETED)
    svc.outbox.queue(delivery)
    return delivery
