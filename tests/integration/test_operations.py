"""Probes, metrics, model listing, supervision and the hardening of the local stack."""
import os
import signal
import time

import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.lanes import waiting_messages
from tests.integration.helpers import submit, wait_for


def test_health_and_readiness(stack, http):
    assert http.get(f"{stack.url}/healthz").json() == {"status": "ok"}
    ready = http.get(f"{stack.url}/readyz").json()
    assert ready["status"] == "ready" and {"digits", "faulty"} <= set(ready["models"])


def test_models_show_signatures_read_from_the_loaded_model(stack, http):
    models = {m["name"]: m for m in http.get(f"{stack.url}/v1/models").json()["models"]}
    digits = models["digits"]
    assert digits["versions"] == [1]
    assert digits["inputs"] == [{"name": "image", "shape": [None, 8, 8], "dtype": "float32"}]
    assert digits["outputs"] == [{"name": "probabilities", "shape": [None, 10], "dtype": "float32"}]
    assert models["faulty"]["inputs"][0]["shape"] == [None, 4]


def metric_value(text, sample_name, **labels):
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_metrics_count_jobs_and_latency_in_prometheus_format(stack, http, digits):
    before = http.get(f"{stack.url}/metrics").text
    job = wait_for(http, stack.url, submit(http, stack.url, "digits", digits.images[:1].tolist()).json()["id"])
    assert job["status"] == "succeeded"
    after = http.get(f"{stack.url}/metrics").text
    for name, labels in [("inferq_jobs_submitted_total", {"model": "digits"}),
                         ("inferq_jobs_finished_total", {"model": "digits", "status": "succeeded"}),
                         ("inferq_job_latency_seconds_count", {"model": "digits"})]:
        assert metric_value(after, name, **labels) >= metric_value(before, name, **labels) + 1, name
    assert metric_value(after, "inferq_queue_depth", model="digits", queue="inferq.digits") >= 0


def test_nginx_hides_its_version(stack, http):
    assert http.get(f"{stack.url}/healthz").headers["Server"] == "nginx"


def test_local_redis_requires_a_password_and_keeps_an_append_only_file(stack):
    port = int(stack.env["INFERQ_LOCAL_REDIS_PORT"])
    anonymous = redis.Redis(port=port)
    try:
        anonymous.ping()
        raise AssertionError("redis answered without a password")
    except redis.exceptions.AuthenticationError:
        pass
    except redis.exceptions.ResponseError as exc:
        assert "NOAUTH" in str(exc)
    client = redis.Redis.from_url(stack.redis_url())
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("appendfsync") == {"appendfsync": "always"}


def test_celery_messages_are_json_and_carry_only_the_job_id(stack, http):
    client = redis.Redis.from_url(stack.redis_url())
    stack.supervisorctl("stop", "worker-faulty")
    try:
        job_id = submit(http, stack.url, "faulty", [[1, 2, 3, 4]]).json()["id"]
        raw = waiting_messages(client, "faulty")
        import base64
        import json

        messages = [json.loads(m) for m in raw]
        ours = [m for m in messages if job_id in base64.b64decode(m["body"]).decode()]
        assert ours and ours[0]["content-type"] == "application/json"
        assert json.loads(base64.b64decode(ours[0]["body"]))[0] == [job_id]
    finally:
        stack.supervisorctl("start", "worker-faulty")
    assert wait_for(http, stack.url, job_id, deadline_s=90)["status"] == "succeeded"


def test_a_killed_worker_is_restarted_and_serves_again(stack, http, digits):
    old_pid = stack.program_pid("worker-digits")
    os.killpg(os.getpgid(old_pid), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            new_pid = stack.program_pid("worker-digits")
        except ValueError:
            new_pid = 0
        if new_pid and new_pid != old_pid:
            break
        time.sleep(0.5)
    assert new_pid and new_pid != old_pid
    job = wait_for(http, stack.url, submit(http, stack.url, "digits", digits.images[:3].tolist()).json()["id"],
                   deadline_s=120)
    assert job["status"] == "succeeded"
