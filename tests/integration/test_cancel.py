"""Cancellation: a queued job ends at once, is never run, and fires its completed webhook."""
import json

from tests.integration.helpers import assert_problem, submit, wait_for


def test_canceling_a_queued_job_ends_it_and_the_worker_skips_it(stack, http, receiver):
    stack.supervisorctl("stop", "worker-faulty")
    try:
        job_id = http.post(f"{stack.url}/v1/models/faulty/jobs", timeout=30, json={
            "instances": [[1, 2, 3, 4]], "webhook": {"url": receiver.url + "/hook"}}).json()["id"]
        canceled = http.delete(f"{stack.url}/v1/jobs/{job_id}")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
        [got] = receiver.wait_for(1)
        event = json.loads(got.body)
        assert event["type"] == "job.completed" and event["data"]["status"] == "canceled"
    finally:
        stack.supervisorctl("start", "worker-faulty")
    follow_up = wait_for(http, stack.url, submit(http, stack.url, "faulty", [[1, 1, 1, 1]]).json()["id"],
                         deadline_s=120)
    assert follow_up["status"] == "succeeded"  # the worker is back and has drained the queue
    job = http.get(f"{stack.url}/v1/jobs/{job_id}").json()
    assert job["status"] == "canceled" and "predictions" not in job and job["started_at"] is None


def test_a_finished_job_cannot_be_canceled(stack, http):
    job_id = submit(http, stack.url, "digits", [[[0] * 8] * 8]).json()["id"]
    assert wait_for(http, stack.url, job_id)["status"] == "succeeded"
    assert_problem(http.delete(f"{stack.url}/v1/jobs/{job_id}"), 409)
