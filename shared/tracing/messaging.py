"""Spans of a job crossing the queue, named after OpenTelemetry's messaging conventions.

``publish <queue>`` (PRODUCER, in the API) is the job's creation context: its ``traceparent``
is stored on the record and put in the Celery message headers. Workers open
``process <queue>`` (CONSUMER) per job as a child of it, with a link to it as well, so the
job's trace runs from the client's request to its webhook.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import SpanKind

from shared import tracing
from shared.jobs import Job
from shared.tracing.context import record_failure, traceparent_of

SYSTEM = "redis"
"""``messaging.system``: the broker the Celery messages sit in."""


def message_attributes(operation: str, kind: str, queue: str, job_id: str) -> dict[str, str]:
    """The messaging attributes of one job's message on ``queue``."""
    return {"messaging.system": SYSTEM, "messaging.operation.name": operation, "messaging.operation.type": kind,
            "messaging.destination.name": queue, "messaging.message.id": job_id}


@contextmanager
def publishing(job: Job, queue: str) -> Iterator[None]:
    """The span of queueing ``job`` on ``queue``; sets ``job.traceparent`` to it first, so the record
    and the message (whose headers take the active context) carry it. Nothing while tracing is off."""
    if not tracing.enabled():
        yield
        return
    attributes = {**message_attributes("publish", "send", queue, job.id),
                  "inferq.model": job.model, "inferq.model_version": job.model_version}
    with tracing.tracer().start_as_current_span(f"publish {queue}", kind=SpanKind.PRODUCER, attributes=attributes,
                                                record_exception=False, set_status_on_exception=False) as span:
        job.traceparent = traceparent_of(span)
        try:
            yield
        except Exception as exc:
            record_failure(span, type(exc).__name__, str(exc))
            raise
