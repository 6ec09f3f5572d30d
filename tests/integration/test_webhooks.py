"""Webhooks end to end: real worker processes, real receivers on 127.0.0.1."""
import json
import os
import signal
import time

import pytest
import requests
import standardwebhooks

from inferq_client.webhooks import verify
from tests.integration.conftest import WEBHOOK_SECRET
from tests.integration.helpers import assert_problem, wait_for
from tests.integration.receiver import Receiver
from tests.integration.stack import free_port

DIGIT = [[0, 0, 5, 13, 9, 1, 0, 0]] * 8


def submit_with_hook(http, stack, url, events=None, model="digits", instances=None):
    webhook = {"url": url} if events is None else {"url": url, "events": events}
    response = http.post(f"{stack.url}/v1/models/{model}/jobs", timeout=30,
                         json={"instances": instances or [DIGIT], "webhook": webhook})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def deliveries(http, stack, job_id):
    return http.get(f"{stack.url}/v1/jobs/{job_id}/deliveries").json()["deliveries"]


def test_deliveries_verify_with_standardwebhooks_and_carry_the_job(stack, http, receiver):
    job_id = submit_with_hook(http, stack, receiver.url + "/hook")
    [got] = receiver.wait_for(1)
    payload = standardwebhooks.Webhook(WEBHOOK_SECRET).verify(got.body, got.headers)
    assert verify(got.body, got.headers, WEBHOOK_SECRET) == payload  # the client helper agrees
    assert payload["type"] == "job.completed"
    assert payload["data"] == http.get(f"{stack.url}/v1/jobs/{job_id}").json()
    assert got.headers["webhook-id"] == f"msg_{job_id}_completed"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(WEBHOOK_SECRET).verify(got.body.replace(b"succeeded", b"failed"), got.headers)


def test_a_receiver_failing_twice_gets_three_attempts_under_one_id(stack, http, receiver):
    receiver.script = [(500, 0, {}), (500, 0, {})]
    job_id = submit_with_hook(http, stack, receiver.url + "/hook")
    got = receiver.wait_for(3)
    assert len(got) == 3
    assert {r.headers["webhook-id"] for r in got} == {f"msg_{job_id}_completed"}
    assert got[1].at - got[0].at >= 0.4 and got[2].at - got[1].at >= 0.8  # 0.5 s, then 1 s, -20% jitter
    time.sleep(0.5)
    log = deliveries(http, stack, job_id)
    assert [(d["attempt"], d["status_code"], d["outcome"]) for d in log] == \
        [(1, 500, "retrying"), (2, 500, "retrying"), (3, 200, "delivered")]
    assert all(d["duration_ms"] >= 0 and d["url"] == receiver.url + "/hook" for d in log)


def test_a_receiver_that_is_down_gets_the_delivery_when_it_comes_up(stack, http):
    port = free_port()
    job_id = submit_with_hook(http, stack, f"http://127.0.0.1:{port}/late")
    deadline = time.monotonic() + 30
    while not deliveries(http, stack, job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert deliveries(http, stack, job_id)[0]["error"]
    late = Receiver(port)
    try:
        [got] = late.wait_for(1, timeout_s=30)
        assert got.headers["webhook-id"] == f"msg_{job_id}_completed"
    finally:
        late.close()


def test_killing_the_webhook_worker_between_retries_loses_no_delivery(stack, http, receiver):
    receiver.script = [(503, 0, {"Retry-After": "4"})]
    job_id = submit_with_hook(http, stack, receiver.url + "/hook")
    receiver.wait_for(1)
    pid = stack.program_pid("webhooks")
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    got = receiver.wait_for(2, timeout_s=60)
    assert len(got) == 2 and got[1].at - got[0].at >= 3.5  # Retry-After honoured
    assert {r.headers["webhook-id"] for r in got} == {f"msg_{job_id}_completed"}


def test_a_hanging_receiver_delays_neither_predictions_nor_other_webhooks(stack, http, receiver):
    slow = Receiver()
    try:
        slow.script = [(200, 10, {})]  # holds the connection past the 3 s attempt timeout
        stuck = submit_with_hook(http, stack, slow.url + "/slow")
        time.sleep(1.0)  # the slow attempt is now holding a delivery thread
        started = time.monotonic()
        fine = submit_with_hook(http, stack, receiver.url + "/fast")
        assert wait_for(http, stack.url, fine)["status"] == "succeeded"
        [got] = receiver.wait_for(1, timeout_s=10)
        assert got.at - started < 3, "a hanging receiver delayed another job's webhook"
        assert wait_for(http, stack.url, stuck)["status"] == "succeeded"
    finally:
        slow.close()


def test_redirects_are_not_followed(stack, http, receiver):
    receiver.script = [(302, 0, {"Location": receiver.url + "/elsewhere"})]
    job_id = submit_with_hook(http, stack, receiver.url + "/hook")
    receiver.wait_for(1)
    time.sleep(1.5)
    assert not [r for r in receiver.received if r.path == "/elsewhere"]
    assert deliveries(http, stack, job_id)[0]["outcome"] == "failed"
    assert deliveries(http, stack, job_id)[0]["status_code"] == 302


def test_started_arrives_before_completed(stack, http, receiver):
    receiver.script = [(500, 0, {})]  # even when started needs a retry
    job_id = submit_with_hook(http, stack, receiver.url + "/hook", events=["started", "completed"])
    got = receiver.wait_for(3)
    types = [json.loads(r.body)["type"] for r in got]
    assert types == ["job.started", "job.started", "job.completed"]
    assert got[0].headers["webhook-id"] == f"msg_{job_id}_started"


def test_redeliver_sends_the_terminal_event_again_with_the_same_id(stack, http, receiver):
    job_id = submit_with_hook(http, stack, receiver.url + "/hook")
    receiver.wait_for(1)
    response = http.post(f"{stack.url}/v1/jobs/{job_id}/deliveries/redeliver")
    assert response.status_code == 202
    got = receiver.wait_for(2)
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"] == f"msg_{job_id}_completed"
    assert got[0].body != b"" and json.loads(got[1].body)["data"]["id"] == job_id


def test_redeliver_needs_a_finished_job_with_a_webhook(stack, http):
    plain = http.post(f"{stack.url}/v1/models/digits/jobs", json={"instances": [DIGIT]}).json()["id"]
    wait_for(http, stack.url, plain)
    assert_problem(http.post(f"{stack.url}/v1/jobs/{plain}/deliveries/redeliver"), 409)
    assert_problem(http.post(f"{stack.url}/v1/jobs/nope/deliveries/redeliver"), 404)
    assert_problem(http.get(f"{stack.url}/v1/jobs/nope/deliveries"), 404)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1/", "ftp://127.0.0.1/x",
                                 "http:///nohost", "http://user:pw@127.0.0.1/", "http://127.0.0.1/" + "x" * 2100])
def test_unsafe_webhook_urls_are_422_at_submit(stack, http, url):
    response = http.post(f"{stack.url}/v1/models/digits/jobs", json={"instances": [DIGIT], "webhook": {"url": url}})
    assert_problem(response, 422)


def test_a_denied_address_written_out_is_refused_at_submit(stack, http):
    # ::1 is loopback but not in the tests' allowed 127.0.0.0/8.
    response = http.post(f"{stack.url}/v1/models/digits/jobs",
                         json={"instances": [DIGIT], "webhook": {"url": "http://[::1]:9/hook"}})
    assert "::1 is loopback" in assert_problem(response, 422)["detail"]


def test_a_name_is_checked_at_send_time_and_a_refusal_is_logged(stack, http):
    # A name is only resolved when the webhook is sent; .invalid never resolves (RFC 6761).
    job_id = submit_with_hook(http, stack, "http://hook.inferq.invalid:9/hook")
    deadline = time.monotonic() + 30
    while not deliveries(http, stack, job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    [entry] = deliveries(http, stack, job_id)
    assert entry["outcome"] == "denied" and "cannot resolve" in entry["error"]


def test_webhook_outcomes_appear_in_metrics(stack, http, receiver):
    submit_with_hook(http, stack, receiver.url + "/hook")
    receiver.wait_for(1)
    time.sleep(0.5)
    text = requests.get(f"{stack.url}/metrics").text
    assert 'inferq_webhook_deliveries_total{outcome="delivered"}' in text
    assert "inferq_webhook_attempt_seconds_count" in text
