"""The spans of the jobs a worker runs: ``process`` per job, ``batch`` per group of jobs run
together, and ``inference`` per forward pass.

A job's ``process <queue>`` span (CONSUMER) is a child of its publish span, read from the
message's ``traceparent`` header, and links to it too: it starts when the job was claimed
and carries ``inferq.queued_ms`` and ``inferq.batch_wait_ms``. The ``batch <model>`` span
links to the process span of every job it carried; it is a child of the first of them that
is sampled, so a sampled job's trace shows the forward pass it rode in and a batch of
unsampled jobs costs nothing. Failures (the model raised, worker lost, expired) set the span
status to error with ``error.type``. While tracing is off a run holds no spans at all.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind

from shared import keys, tracing
from shared.celery_message import TaskMessage
from shared.job_store import StartOutcome
from shared.jobs import Job
from shared.tracing.context import parent_from, record_failure
from shared.tracing.messaging import message_attributes

EXPIRED = "JobExpired"
"""``error.type`` of a message whose job record is gone (expired, or never stored)."""


def _open_process_span(message: TaskMessage, start_ns: int | None) -> Span:
    """The process span of one message, in the trace its ``traceparent`` names."""
    parent = parent_from(message.traceparent)
    linked = None if parent is None else trace.get_current_span(parent).get_span_context()
    queue = message.queue or "inferq"
    return tracing.tracer().start_span(
        f"process {queue}", context=parent, kind=SpanKind.CONSUMER,
        attributes=message_attributes("process", "process", queue, message.job_id),
        links=[Link(linked)] if linked is not None else None, start_time=start_ns)


def failed_alone(message: TaskMessage, error_type: str, description: str) -> None:
    """A job given up without being run (its worker was lost too often, or it ran over its time
    limit): a process span that ends failed at once."""
    if tracing.enabled():
        span = _open_process_span(message, None)
        record_failure(span, error_type, description)
        span.end()


class RunSpans:
    """The process spans of one run (a claimed batch, or one prefork task), ended as each job ends."""

    def __init__(self, messages: list[TaskMessage], claimed_at: float | None):
        start_ns = None if claimed_at is None else int(claimed_at * 1e9)
        self.claimed_at = claimed_at
        self.spans: dict[str, Span] = ({m.job_id: _open_process_span(m, start_ns) for m in messages}
                                       if tracing.enabled() else {})

    def not_started(self, job_id: str, outcome: StartOutcome) -> None:
        """A message whose job was not run: already finished (a redelivery), or gone (an error)."""
        span = self.spans.pop(job_id, None)
        if span is not None:
            span.set_attribute("inferq.start", outcome.value)
            if outcome is StartOutcome.GONE:
                record_failure(span, EXPIRED, "the job record is gone: it expired before a worker took it")
            span.end()

    def started(self, job: Job) -> None:
        """The job is running: name its model, version and attempt."""
        span = self.spans.get(job.id)
        if span is not None:
            span.set_attributes({"inferq.model": job.model, "inferq.model_version": job.model_version,
                                 "inferq.attempt": job.attempts})
            if self.claimed_at is not None:
                span.set_attribute("inferq.queued_ms", round(max(0.0, self.claimed_at - job.created_at) * 1000, 3))

    def failed(self, job_id: str, error_type: str, description: str) -> None:
        """The job ended failed."""
        span = self.spans.pop(job_id, None)
        if span is not None:
            record_failure(span, error_type, description)
            span.end()

    def succeeded(self, job_id: str, timings: dict | None) -> None:
        """The job ended with its predictions; its timings become ``inferq.*`` attributes."""
        span = self.spans.pop(job_id, None)
        if span is not None:
            span.set_attributes({f"inferq.{name}": value for name, value in (timings or {}).items()})
            span.end()

    def close(self) -> None:
        """End the spans of jobs the run left without an outcome (a canceled job's, say)."""
        for span in self.spans.values():
            span.end()
        self.spans.clear()

    @contextmanager
    def batch(self, model: str, version: int, jobs: list[Job]) -> Iterator[None]:
        """The span of running ``jobs`` together, linked to each one's process span."""
        members = [self.spans[job.id] for job in jobs if job.id in self.spans]
        parent = next((span for span in members if span.is_recording()), None)
        if parent is None:
            yield
            return
        attributes = {"inferq.model": model, "inferq.model_version": version, "messaging.batch.message_count": len(jobs),
                      "messaging.destination.name": keys.queue(model)}
        with tracing.tracer().start_as_current_span(
                f"batch {model}", context=trace.set_span_in_context(parent),
                links=[Link(span.get_span_context()) for span in members], attributes=attributes):
            yield


@contextmanager
def inference(model: str, version: int, batch_size: int) -> Iterator[None]:
    """One forward pass, inside the batch span (nothing when that batch is not traced)."""
    if not tracing.enabled() or not trace.get_current_span().is_recording():
        yield
        return
    attributes = {"inferq.model": model, "inferq.model_version": version, "inferq.batch_size": batch_size}
    with tracing.tracer().start_as_current_span(f"inference {model}", attributes=attributes,
                                                record_exception=False, set_status_on_exception=False) as span:
        try:
            yield
        except Exception as exc:
            record_failure(span, type(exc).__name__, str(exc))
            raise
