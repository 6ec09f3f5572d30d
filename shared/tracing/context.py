"""A job's trace context as a W3C ``traceparent`` string, and the span helpers every process shares.

The job record and the Celery message carry the context of the job's publish span as a
``traceparent`` string: it survives the queue, a worker restart and a webhook retry hours
later, and a stock Celery worker (or Celery's own OpenTelemetry instrumentation) reads the
message header like any other. Each helper returns at once while tracing is off.
"""
from __future__ import annotations

from collections.abc import MutableMapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared import tracing

ERROR_TYPE = "error.type"
"""The semantic-conventions attribute naming what failed."""

DESCRIPTION_LIMIT = 500
"""Longest error description put on a span (exception texts can be megabytes)."""

_W3C = TraceContextTextMapPropagator()


def traceparent_of(span: Span) -> str:
    """The W3C ``traceparent`` of ``span``; '' for a span without a valid context (tracing off)."""
    context = span.get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def current_traceparent() -> str:
    """The ``traceparent`` of the active span ('' while tracing is off or no span is active)."""
    if not tracing.enabled():
        return ""
    return traceparent_of(trace.get_current_span())


def parent_from(traceparent: str) -> Context | None:
    """A context whose parent is the span ``traceparent`` names; None (a new trace) when it is empty or invalid."""
    if not traceparent:
        return None
    context = _W3C.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def inject_into(headers: MutableMapping[str, str], span: Span) -> None:
    """Add the headers (``traceparent``, with ``OTEL_PROPAGATORS``' others) that continue ``span``'s trace."""
    propagate.inject(headers, context=trace.set_span_in_context(span))


def record_failure(span: Span, error_type: str, description: str = "") -> None:
    """Mark ``span`` failed with a low-cardinality ``error.type`` (an exception or outcome name)."""
    span.set_attribute(ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {description}"[:DESCRIPTION_LIMIT]
                           if description else error_type))
