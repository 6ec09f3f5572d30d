"""Dynamic batching with the real model and worker: correct owners, isolation, no loss."""
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import redis

from shared import celery_message, keys
from shared.tasks import PREDICT_TASK
from tests.integration.helpers import submit, wait_for


def paused_worker(stack, program):
    """Context: stop a worker so jobs pile up, then start it so it claims them in batches."""

    class Paused:
        def __enter__(self):
            stack.supervisorctl("stop", program)

        def __exit__(self, *exc):
            stack.supervisorctl("start", program)

    return Paused()


def test_batched_results_equal_unbatched_model_calls_and_reach_their_owner(stack, http, digits, digits_model):
    sizes = [1, 3, 7, 1, 20, 2, 40, 1, 5, 9] * 3
    offsets = np.cumsum([0] + sizes)
    with paused_worker(stack, "worker-digits"):
        job_ids = [submit(http, stack.url, "digits", digits.images[a:b].tolist()).json()["id"]
                   for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    jobs = [wait_for(http, stack.url, job_id, deadline_s=120) for job_id in job_ids]
    for job, a, b in zip(jobs, offsets[:-1], offsets[1:], strict=False):
        assert job["status"] == "succeeded", job
        expected = np.asarray(digits_model(digits.images[a:b].astype(np.float32), training=False))
        np.testing.assert_allclose(np.asarray(job["predictions"]), expected, rtol=1e-5, atol=1e-6)
        timings = job["timings"]
        assert set(timings) == {"queued_ms", "batch_wait_ms", "inference_ms", "batch_size"}
        assert 1 <= timings["batch_size"] <= 32
    # Jobs that waited together shared forward passes.
    assert max(job["timings"]["batch_size"] for job in jobs) == 32


def test_a_failing_instance_fails_only_its_own_job(stack, http):
    with paused_worker(stack, "worker-faulty"):
        good_before = [submit(http, stack.url, "faulty", [[1, 2, 3, 4]] * 3).json()["id"] for _ in range(3)]
        bad = submit(http, stack.url, "faulty", [[1, 2, 3, 4], [500, 0, 0, 0]]).json()["id"]
        good_after = [submit(http, stack.url, "faulty", [[4, 3, 2, 1]]).json()["id"] for _ in range(3)]
    assert wait_for(http, stack.url, bad, deadline_s=120)["status"] == "failed"
    for job_id in good_before + good_after:
        assert wait_for(http, stack.url, job_id)["status"] == "succeeded"


def test_a_worker_killed_mid_batch_loses_none_of_its_jobs(stack, http, digits):
    client = redis.Redis.from_url(stack.redis_url())
    in_flight = keys.processing(f"worker-digits@{os.uname().nodename}", "digits")
    with paused_worker(stack, "worker-digits"), ThreadPoolExecutor(16) as pool:
        job_ids = list(pool.map(
            lambda n: submit(http, stack.url, "digits", digits.images[n % 1700:n % 1700 + 64].tolist())
            .json()["id"], range(400)))
    pid = stack.program_pid("worker-digits")  # now: the kill must follow the claim at once
    deadline = time.monotonic() + 90
    while not client.llen(in_flight) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert client.llen(in_flight), "the worker never claimed a batch"
    os.killpg(os.getpgid(pid), signal.SIGKILL)
    held = {celery_message.job_id_of(raw, PREDICT_TASK) for raw in client.lrange(in_flight, 0, -1)}
    assert held, "the kill came after the batch was acknowledged"
    jobs = {job_id: wait_for(http, stack.url, job_id, deadline_s=180) for job_id in job_ids}
    assert [j["status"] for j in jobs.values()].count("succeeded") == 400
    assert all(jobs[job_id]["status"] == "succeeded" for job_id in held)
    assert client.llen(in_flight) == 0
    log = (stack.data_dir / "logs" / "worker-digits.log").read_text()
    assert "recovering" in log and "this worker held when it last stopped; running each alone" in log


def test_a_pickled_message_in_a_model_queue_is_discarded_and_logged_never_unpickled(stack, http, tmp_path):
    """A message in Celery's pickle format whose body would create a file when unpickled."""
    import base64
    import pickle

    import orjson

    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    body = base64.b64encode(pickle.dumps(((Exploit(),), {}, {}))).decode()
    message = orjson.dumps({"body": body, "content-type": "application/x-python-serialize",
                            "content-encoding": "binary", "headers": {"task": "inferq.predict", "id": "evil"},
                            "properties": {"delivery_tag": "evil", "body_encoding": "base64"}})
    client = redis.Redis.from_url(stack.redis_url())
    client.lpush(keys.queue("digits"), message)
    log = stack.data_dir / "logs" / "worker-digits.log"
    deadline = time.monotonic() + 20
    while "application/x-python-serialize" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "discarding a message" in log.read_text() and "x-python-serialize" in log.read_text()
    assert not marker.exists()
    assert client.llen(keys.queue("digits")) == 0
    job = submit(http, stack.url, "digits", [[[0.0] * 8] * 8]).json()
    assert wait_for(http, stack.url, job["id"])["status"] == "succeeded"  # the queue keeps flowing
