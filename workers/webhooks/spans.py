"""The span of one webhook delivery attempt: a CLIENT child in the job's trace.

Its parent is the job's stored ``traceparent``, so an attempt made hours later (a retry, a
redelivery) still lands in the job's trace, and the request carries the attempt's own
``traceparent``: a receiver with tracing of its own continues the same trace. The span
records the status code, the attempt number and the SSRF guard's decision; a refused
destination, an error answer and a dead delivery set its status to error.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind

from shared import tracing
from shared.outbox import Delivery
from shared.tracing.context import inject_into, parent_from, record_failure
from shared.webhooks import DeliveryOutcome
from workers.webhooks.http import AttemptResult

ERROR_TYPES = {DeliveryOutcome.DENIED: "DeniedDestination", DeliveryOutcome.DEAD: "WebhookDead"}
"""``error.type`` of the outcomes that are failures whatever the answer was."""


class AttemptSpan:
    """Describes the attempt on its span once its result is known (nothing while untraced)."""

    def __init__(self, span: Span | None = None):
        self.span = span

    def record(self, result: AttemptResult, outcome: DeliveryOutcome) -> None:
        """The attempt's answer, the guard's decision and the outcome; an error unless delivered."""
        if self.span is None:
            return
        self.span.set_attributes({"inferq.webhook.outcome": outcome.value,
                                  "inferq.webhook.ssrf": "denied" if result.denied else "allowed"})
        if result.status is not None:
            self.span.set_attribute("http.response.status_code", result.status)
        if outcome is DeliveryOutcome.DELIVERED:
            return
        error_type = ERROR_TYPES.get(outcome) or (str(result.status) if result.status is not None
                                                  else (result.error or "error").split(":", 1)[0])
        record_failure(self.span, error_type, result.error or f"the receiver answered {result.status}")


@contextmanager
def attempt_span(traceparent: str, delivery: Delivery, url: str, msg_id: str,
                 headers: dict[str, str]) -> Iterator[AttemptSpan]:
    """The span of one attempt; adds the headers that carry its context to ``headers``."""
    if not tracing.enabled():
        yield AttemptSpan()
        return
    parts = urlsplit(url)
    attributes = {"http.request.method": "POST", "url.full": f"{parts.scheme}://{parts.netloc}{parts.path or '/'}",
                  "server.address": parts.hostname or "", "server.port": parts.port or (443 if parts.scheme == "https" else 80),
                  "http.request.resend_count": delivery.attempt - 1, "inferq.webhook.attempt": delivery.attempt,
                  "inferq.webhook.event": delivery.event.value, "inferq.webhook.id": msg_id,
                  "inferq.job.id": delivery.job_id}
    with tracing.tracer().start_as_current_span(f"webhook job.{delivery.event.value}", context=parent_from(traceparent),
                                                kind=SpanKind.CLIENT, attributes=attributes) as span:
        inject_into(headers, span)
        yield AttemptSpan(span)
