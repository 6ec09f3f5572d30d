"""When tracing turns on, what each process calls itself, and that off means nothing is added."""
import orjson
import pytest

from shared import celery_message, keys, tracing
from shared.jobs import Job
from shared.settings import child_environment
from shared.tasks import PREDICT_TASK
from shared.tracing import Service, exporter_names, wants_export
from shared.tracing.setup import exporter_named, resource_for
from shared.tracing.wsgi import TracedWsgi
from tests.fixtures.lanes import waiting_messages
from tests.unit.conftest import digit_image
from web.app import create_app


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, False),
    ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
])
def test_tracing_is_on_only_when_the_standard_environment_asks_for_export(environ, expected):
    assert wants_export(environ) is expected


def test_an_endpoint_alone_means_otlp_and_the_exporter_list_is_honoured():
    assert exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}) == ["otlp"]
    assert exporter_names({"OTEL_TRACES_EXPORTER": "otlp, console,none"}) == ["otlp", "console"]


def test_otlp_is_the_http_protobuf_exporter_and_an_unknown_name_is_dropped():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    assert isinstance(exporter_named("otlp", {}), OTLPSpanExporter)
    assert exporter_named("no-such-exporter", {}) is None


def test_each_process_names_its_role_whatever_otel_service_name_says(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "one-name-for-everything")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging,service.name=ignored")
    for service in Service:
        attributes = resource_for(service).attributes
        assert attributes["service.name"] == service.value
        assert attributes["deployment.environment.name"] == "staging"
    assert {s.value for s in Service} == {"inferq-web", "inferq-worker", "inferq-webhooks"}


def test_init_installs_a_provider_only_when_asked_and_only_once(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert tracing.init(Service.WORKER) is False and not tracing.enabled()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    try:
        assert tracing.init(Service.WORKER) is True and tracing.enabled()
        provider = tracing._State.provider
        assert provider.resource.attributes["service.name"] == "inferq-worker"
        assert tracing.init(Service.WEB) is True and tracing._State.provider is provider
    finally:
        tracing.uninstall()
        provider.shutdown()


def test_make_run_hands_the_otel_environment_to_every_process():
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
               "PATH": "/bin"}
    child = child_environment({"redis_url": "redis://127.0.0.1:1/0"}, environ)
    assert {k: v for k, v in child.items() if k.startswith("OTEL_")} == {k: v for k, v in environ.items()
                                                                          if k.startswith("OTEL_")}


def test_untraced_the_api_is_not_wrapped_and_jobs_carry_no_trace(settings, redis_client):
    from shared.signatures import ModelCatalog
    from tests.unit.conftest import DIGITS

    assert not tracing.enabled()
    ModelCatalog(redis_client).publish(DIGITS)
    app = create_app(settings, redis_client=redis_client)
    assert not isinstance(app.wsgi_app, TracedWsgi)
    client_traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = app.test_client().post("/v1/models/digits/jobs", json={"instances": [digit_image()]},
                                      headers={"traceparent": client_traceparent})
    assert response.status_code == 202 and "traceparent" not in response.headers
    assert "trace_id" not in response.get_json()
    assert redis_client.hget(keys.job(response.get_json()["id"]), "traceparent") is None
    [message] = waiting_messages(redis_client, "digits")
    assert "traceparent" not in orjson.loads(message)["headers"]


def test_a_message_carries_the_traceparent_as_one_more_header_and_it_decodes():
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    plain = orjson.loads(celery_message.encode(PREDICT_TASK, "j", "inferq.digits"))
    traced = orjson.loads(celery_message.encode(PREDICT_TASK, "j", "inferq.digits", traceparent))
    assert traced["headers"] == {**plain["headers"], "origin": traced["headers"]["origin"], "traceparent": traceparent}
    decoded = celery_message.decode(orjson.dumps(traced), PREDICT_TASK)
    assert (decoded.job_id, decoded.traceparent, decoded.queue) == ("j", traceparent, "inferq.digits")


def test_the_public_job_shows_its_trace_id_only_when_traced():
    job = Job(id="j", model="m", model_version="1")
    assert job.trace_id is None and "trace_id" not in job.to_public()
    job.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert job.to_public()["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


def test_celery_hands_the_traceparent_header_to_a_stock_workers_task_request():
    """What the prefork task reads (``workers/inference/tasks.py``): Celery's own request building."""
    import base64

    from celery import Celery
    from celery.app.task import Context
    from celery.worker.request import Request
    from kombu.message import Message

    app = Celery("probe", set_as_current=False)

    @app.task(name=PREDICT_TASK)
    def predict(job_id):
        pass

    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    raw = orjson.loads(celery_message.encode(PREDICT_TASK, "j", "inferq.digits", traceparent))
    message = Message(body=base64.b64decode(raw["body"]), headers=raw["headers"], properties=raw["properties"],
                      content_type="application/json", content_encoding="utf-8",
                      delivery_info=raw["properties"]["delivery_info"])
    request = Context(Request(message, app=app).request_dict)
    assert request.get("traceparent") == traceparent and request.delivery_info["routing_key"] == "inferq.digits"
