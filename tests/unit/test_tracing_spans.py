"""One trace per job: the API's spans, the worker's and the webhook's, read from the SDK's in-memory exporter."""
import time

import numpy as np
import orjson
from opentelemetry.trace import SpanKind, StatusCode

from shared import keys, tracing
from shared.job_store import JobStore
from shared.jobs import Job
from shared.queue import JobQueue
from shared.settings import Settings
from shared.signatures import ModelCatalog
from shared.tracing.context import parent_from
from shared.tracing.messaging import publishing
from tests.fixtures.lanes import waiting_messages
from tests.unit.conftest import DIGITS, digit_image
from tests.unit.test_consumer import DoublingModel, make_consumer
from web.app import create_app

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


def named(exporter, prefix):
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


def hex_trace(span):
    return f"{span.context.trace_id:032x}"


def traced_app(redis_client, **settings):
    ModelCatalog(redis_client).publish(DIGITS)
    return create_app(Settings(max_body_bytes=64 * 1024, max_instances=16, **settings), redis_client=redis_client)


def test_a_submit_joins_the_clients_trace_and_returns_it(spans, redis_client):
    client = traced_app(redis_client).test_client()
    response = client.post("/v1/models/digits/jobs", json={"instances": [digit_image()]},
                           headers={"traceparent": CLIENT_TRACEPARENT})
    assert response.status_code == 202
    job = response.get_json()
    assert job["trace_id"] == CLIENT_TRACE
    [server] = named(spans, "POST /v1/models/<name:model>/jobs")
    [publish] = named(spans, "publish inferq.digits")
    assert server.kind is SpanKind.SERVER and server.parent.span_id == int(CLIENT_SPAN, 16)
    assert server.attributes["http.response.status_code"] == 202
    assert publish.kind is SpanKind.PRODUCER and publish.parent.span_id == server.context.span_id
    assert publish.attributes["messaging.message.id"] == job["id"]
    traceparent = response.headers["traceparent"]
    assert traceparent == f"00-{CLIENT_TRACE}-{publish.context.span_id:016x}-01"
    assert redis_client.hget(keys.job(job["id"]), "traceparent").decode() == traceparent
    [message] = waiting_messages(redis_client, "digits")
    assert orjson.loads(message)["headers"]["traceparent"] == traceparent


def test_without_a_traceparent_the_api_starts_the_trace(spans, redis_client):
    response = traced_app(redis_client).test_client().post("/v1/models/digits/jobs", json={"instances": [digit_image()]})
    [server] = named(spans, "POST")
    assert server.parent is None and response.get_json()["trace_id"] == hex_trace(server)
    assert response.headers["traceparent"].split("-")[1] == hex_trace(server)


def test_a_full_queue_fails_the_publish_span(spans, redis_client):
    client = traced_app(redis_client, max_queued_per_model=1).test_client()
    for _ in range(2):
        response = client.post("/v1/models/digits/jobs", json={"instances": [digit_image()]})
    assert response.status_code == 503
    failed = named(spans, "publish")[-1]
    assert failed.status.status_code is StatusCode.ERROR and failed.attributes["error.type"] == "QueueFull"


def published(redis_client, job_id, instances, traceparent=CLIENT_TRACEPARENT):
    """Queue a job inside a publish span under the client's trace, as the API does."""
    store = JobStore(redis_client, ttl_s=60)
    job = Job(id=job_id, model="digits", model_version="1", instances_json=repr(instances).encode())
    with (tracing.tracer().start_as_current_span("client request", context=parent_from(traceparent)),
          publishing(job, keys.queue("digits"))):
        JobQueue(redis_client, store).submit(job)
    return job


def test_each_job_is_processed_in_its_own_trace_and_the_batch_links_them_all(spans, redis_client):
    consumer, _, _ = make_consumer(redis_client)
    first = published(redis_client, "a", [[1.0]])
    second = published(redis_client, "b", [[2.0], [3.0]], traceparent=f"00-{'1' * 32}-{'2' * 16}-01")
    consumer.process(consumer.gather(), time.time())
    process = {s.attributes["messaging.message.id"]: s for s in named(spans, "process inferq.digits")}
    for job in (first, second):
        span, publish_id = process[job.id], int(job.traceparent.split("-")[2], 16)
        assert span.kind is SpanKind.CONSUMER and hex_trace(span) == job.trace_id
        assert span.parent.span_id == publish_id and [link.context.span_id for link in span.links] == [publish_id]
        assert span.attributes["inferq.queued_ms"] >= 0 and span.attributes["inferq.batch_wait_ms"] >= 0
        assert span.status.status_code is StatusCode.UNSET
    [batch] = named(spans, "batch digits")
    assert {link.context.span_id for link in batch.links} == {s.context.span_id for s in process.values()}
    assert batch.parent.span_id == process["a"].context.span_id and batch.attributes["messaging.batch.message_count"] == 2
    [inference] = named(spans, "inference digits")
    assert inference.parent.span_id == batch.context.span_id
    assert inference.attributes["inferq.batch_size"] == 3 and inference.attributes["inferq.model_version"] == 1


class FailingModel(DoublingModel):
    def predict(self, batch):
        raise ValueError("the model raised")


def test_a_job_whose_model_raised_has_an_error_span(spans, redis_client):
    consumer, store, _ = make_consumer(redis_client, model=FailingModel())
    job = published(redis_client, "bad", [[1.0]])
    consumer.process(consumer.gather(), time.time())
    [span] = named(spans, "process")
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "ValueError"
    assert hex_trace(span) == job.trace_id and store.get("bad").error["type"] == "ValueError"
    [inference] = named(spans, "inference")
    assert inference.status.status_code is StatusCode.ERROR


def test_an_expired_job_and_a_lost_one_have_error_spans_in_their_traces(spans, redis_client):
    consumer, store, _ = make_consumer(redis_client)
    expired = published(redis_client, "expired", [[1.0]])
    redis_client.delete(keys.job("expired"))
    lost = published(redis_client, "lost", [[1.0]])
    for _ in range(3):  # started three times, and each time its worker died
        store.start("lost", "elsewhere")
    consumer.process(consumer.gather(), time.time())
    process = {s.attributes["messaging.message.id"]: s for s in named(spans, "process")}
    assert process["expired"].attributes["error.type"] == "JobExpired" and hex_trace(process["expired"]) == expired.trace_id
    assert process["lost"].attributes["error.type"] == "WorkerLost" and hex_trace(process["lost"]) == lost.trace_id
    assert all(s.status.status_code is StatusCode.ERROR for s in process.values())
    assert named(spans, "batch") == []


def test_with_tracing_off_a_run_holds_no_spans(redis_client):
    from shared import celery_message
    from workers.inference.job_spans import RunSpans

    assert not tracing.enabled()
    assert RunSpans([celery_message.TaskMessage("j", CLIENT_TRACEPARENT, "inferq.digits")], time.time()).spans == {}
    consumer, store, queue = make_consumer(redis_client)
    queue.submit(Job(id="j", model="digits", model_version="1", instances_json=b"[[1.0]]"))
    consumer.process(consumer.gather(), time.time())
    assert np.asarray(orjson.loads(store.get("j").predictions_json)).tolist() == [[2.0]]
