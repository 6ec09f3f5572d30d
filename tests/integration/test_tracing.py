"""One trace per job across the real stack: nginx, the API, the queue, the batch and the webhook,
exported over OTLP/HTTP to a receiver on 127.0.0.1 and decoded with opentelemetry-proto."""
from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import WEBHOOK_SECRET
from tests.integration.helpers import submit, wait_for
from tests.integration.otlp_receiver import OtlpReceiver
from tests.integration.receiver import Receiver
from tests.integration.stack import copy_demo_model, start_stack, stop_stack

DIGIT = [[0, 0, 5, 13, 9, 1, 0, 0]] * 8
SERVICES = {"inferq-web", "inferq-worker", "inferq-webhooks"}


@pytest.fixture(scope="module")
def otlp():
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory, otlp):
    from tests.fixtures.failing_layer import build_faulty_model

    base = tmp_path_factory.mktemp("traced")
    models_dir = base / "models"
    copy_demo_model(models_dir)
    (models_dir / "faulty" / "1").mkdir(parents=True)
    build_faulty_model().save(models_dir / "faulty" / "1" / "model.keras")
    stack = start_stack(base, models_dir, {"digits", "faulty"}, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_SERVICE_NAME": "not-honoured",
        "INFERQ_WORKER_IMPORTS": "tests.fixtures.failing_layer",
        "INFERQ_WORKER_GROUPS": "digits+faulty",
        "INFERQ_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "INFERQ_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    })
    yield stack
    assert stop_stack(stack) == 0, stack.logs()


@pytest.fixture
def receiver():
    hooks = Receiver()
    yield hooks
    hooks.close()


def client_traceparent() -> tuple[str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, f"00-{trace_id}-{span_id}-01"


def one(spans, name_prefix: str):
    found = [s for s in spans if s.name.startswith(name_prefix)]
    assert len(found) == 1, [(s.service, s.name) for s in spans]
    return found[0]


def test_one_job_is_one_trace_from_the_client_to_the_webhook_receiver(traced_stack, http, otlp, receiver):
    trace_id, traceparent = client_traceparent()
    response = http.post(f"{traced_stack.url}/v1/models/digits/jobs", headers={"traceparent": traceparent}, timeout=30,
                         json={"instances": [DIGIT], "webhook": {"url": receiver.url + "/hook"}})
    assert response.status_code == 202, response.text
    assert response.headers["traceparent"].split("-")[1] == trace_id and response.json()["trace_id"] == trace_id
    assert wait_for(http, traced_stack.url, response.json()["id"])["status"] == "succeeded"
    [hook] = receiver.wait_for(1)
    assert hook.headers["traceparent"].split("-")[1] == trace_id
    spans = otlp.wait_for(lambda r: SERVICES <= {s.service for s in r.in_trace(trace_id)} and r.in_trace(trace_id))
    assert {s.service for s in spans} == SERVICES  # OTEL_SERVICE_NAME does not rename any of them
    server, publish = one(spans, "POST /v1/models/"), one(spans, "publish inferq.digits")
    process, webhook = one(spans, "process inferq.digits"), one(spans, "webhook job.completed")
    assert server.parent_span_id == traceparent.split("-")[2] and publish.parent_span_id == server.span_id
    assert process.parent_span_id == publish.span_id and (trace_id, publish.span_id) in process.links
    assert process.attributes["inferq.queued_ms"] >= 0 and "inferq.batch_wait_ms" in process.attributes
    batch = one(spans, "batch digits")
    assert (trace_id, process.span_id) in batch.links
    assert one(spans, "inference digits").attributes["inferq.batch_size"] >= 1
    assert webhook.parent_span_id == publish.span_id and webhook.attributes["http.response.status_code"] == 200
    assert hook.headers["traceparent"].split("-")[2] == webhook.span_id
    assert not any(s.failed for s in spans)


def test_each_batch_span_links_to_the_jobs_it_carried(traced_stack, http, otlp):
    traces = [client_traceparent() for _ in range(12)]
    with ThreadPoolExecutor(12) as pool:
        jobs = list(pool.map(lambda t: submit(http, traced_stack.url, "digits", [DIGIT],
                                              headers={"traceparent": t[1]}).json()["id"], traces))
    assert all(wait_for(http, traced_stack.url, job_id)["status"] == "succeeded" for job_id in jobs)
    ids = {trace_id for trace_id, _ in traces}

    def processed(r):
        found = {s.span_id: s for s in r.spans if s.name.startswith("process") and s.trace_id in ids}
        return found if len(found) == len(ids) else None

    process = otlp.wait_for(processed)
    assert process, "not every job's process span arrived"
    batches = otlp.wait_for(lambda r: [s for s in r.spans if s.name.startswith("batch")
                                       and {sid for _, sid in s.links} & set(process)])
    carried = [sid for batch in batches for _, sid in batch.links]
    assert sorted(carried) == sorted(process)  # every job in exactly one batch
    for batch in batches:
        assert batch.attributes["messaging.batch.message_count"] == len(batch.links)
        assert {process[sid].attributes["messaging.message.id"] for _, sid in batch.links} <= set(jobs)


def test_a_failed_job_has_an_error_span_in_its_trace(traced_stack, http, otlp):
    trace_id, traceparent = client_traceparent()
    response = submit(http, traced_stack.url, "faulty", [[100, 0, 0, 0]], headers={"traceparent": traceparent})
    job = wait_for(http, traced_stack.url, response.json()["id"])
    assert job["status"] == "failed" and job["trace_id"] == trace_id
    process = otlp.wait_for(lambda r: [s for s in r.in_trace(trace_id) if s.name.startswith("process")])
    assert process and process[0].failed and process[0].attributes["error.type"] == job["error"]["type"]
