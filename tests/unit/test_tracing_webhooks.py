"""Each webhook delivery attempt is a span in its job's trace, and its request carries that trace on."""
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from shared.job_store import JobStore
from shared.jobs import Job
from shared.settings import Settings
from tests.unit.conftest import submit_job
from workers.webhooks import delivery as webhook_delivery
from workers.webhooks import signing
from workers.webhooks.http import AttemptResult

TRACE = "0af7651916cd43dd8448eb211c80319c"
PUBLISH_SPAN = "b7ad6b7169203331"


@pytest.fixture
def sent(monkeypatch):
    """The headers of each attempt, answered from ``results`` in order."""
    script = {"results": [], "headers": []}

    def fake_post(url, body, headers, *args, **kwargs):
        script["headers"].append(dict(headers))
        return script["results"].pop(0)

    monkeypatch.setattr(webhook_delivery, "post", fake_post)
    return script


@pytest.fixture
def deliverer(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = Job(id="j1", model="digits", model_version="1", traceparent=f"00-{TRACE}-{PUBLISH_SPAN}-01",
              webhook={"url": "https://example.com/hook?token=secret", "events": ["completed"]})
    submit_job(store, job)
    store.start("j1", "w")
    store.succeed(job, b"[[1]]")
    return webhook_delivery.Deliverer(Settings(webhook_secret=signing.new_secret(), webhook_schedule_s="0.01"),
                                      redis_client)


def test_a_delivery_is_a_client_span_in_the_jobs_trace_and_sends_it_on(spans, sent, deliverer):
    sent["results"] = [AttemptResult(status=204)]
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "delivered"
    [span] = spans.get_finished_spans()
    assert span.name == "webhook job.completed" and span.kind is SpanKind.CLIENT
    assert f"{span.context.trace_id:032x}" == TRACE and span.parent.span_id == int(PUBLISH_SPAN, 16)
    assert span.attributes["http.response.status_code"] == 204 and span.attributes["inferq.webhook.attempt"] == 1
    assert span.attributes["inferq.webhook.ssrf"] == "allowed" and span.status.status_code is StatusCode.UNSET
    assert span.attributes["url.full"] == "https://example.com/hook"  # the query may hold a secret
    assert sent["headers"][0]["traceparent"] == f"00-{TRACE}-{span.context.span_id:016x}-01"
    assert sent["headers"][0]["webhook-id"] == "msg_j1_completed"


def test_a_denied_destination_is_an_error_span_naming_the_guards_decision(spans, sent, deliverer):
    sent["results"] = [AttemptResult(error="example.com resolves to a denied address: 10.0.0.1 is private", denied=True)]
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "denied"
    [span] = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "DeniedDestination"
    assert span.attributes["inferq.webhook.ssrf"] == "denied" and "10.0.0.1" in span.status.description


def test_a_retried_then_dead_delivery_has_an_error_span_per_attempt(spans, sent, deliverer):
    sent["results"] = [AttemptResult(status=503), AttemptResult(error="NewConnectionError: refused")]
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "retrying"
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 2) == "dead"
    first, last = spans.get_finished_spans()
    assert first.attributes["error.type"] == "503" and first.attributes["inferq.webhook.outcome"] == "retrying"
    assert last.attributes["error.type"] == "WebhookDead" and last.attributes["http.request.resend_count"] == 1
    assert {f"{s.context.trace_id:032x}" for s in (first, last)} == {TRACE}


def test_untraced_the_request_carries_no_traceparent(sent, deliverer):
    sent["results"] = [AttemptResult(status=200)]
    deliverer.deliver("j1", "completed", "msg_j1_completed", 1)
    assert "traceparent" not in sent["headers"][0]
