"""The queue cap (503) and the per-key rate limit (429), both with Retry-After."""
import time

import pytest

from shared import keys, throughput
from shared.job_store import JobStore
from shared.jobs import Job
from shared.queue import JobQueue, QueueFull
from shared.settings import Settings
from shared.signatures import ModelCatalog
from tests.fixtures.lanes import waiting_count
from tests.unit.conftest import DIGITS, digit_image, submit_job
from web.app import create_app
from web.backpressure import RateLimiter


def app_with(redis_client, **overrides):
    ModelCatalog(redis_client).publish(DIGITS)
    settings = Settings(max_body_bytes=64 * 1024, max_instances=16, max_elements=1024, **overrides)
    return create_app(settings, redis_client=redis_client).test_client()


def submit(client, **headers):
    return client.post("/v1/models/digits/jobs", json={"instances": [digit_image()]}, headers=headers)


def test_a_full_queue_answers_503_with_retry_after_from_backlog_and_throughput(redis_client):
    client = app_with(redis_client, max_queued_per_model=3)
    store = JobStore(redis_client, 60)
    finished = []
    for n in range(20):  # 20 jobs ended in the last seconds: about 0.5-0.6 jobs/s over the window
        job = Job(id=f"done{n}", model="digits", model_version="1")
        submit_job(store, job)
        store.succeed(job, b"[1]")
        finished.append(job)
    assert [submit(client).status_code for _ in range(3)] == [202, 202, 202]
    full = submit(client)
    assert full.status_code == 503
    problem = full.get_json()
    assert problem["backlog"] == 3 and problem["jobs_per_second"] > 0
    rate = throughput.jobs_per_second(redis_client, "digits")
    assert int(full.headers["Retry-After"]) == max(1, -(-1 // rate))  # one job must end first


def test_with_nothing_finishing_retry_after_is_capped(redis_client):
    client = app_with(redis_client, max_queued_per_model=1)
    assert submit(client).status_code == 202
    assert submit(client).headers["Retry-After"] == "300"


def test_an_idempotent_replay_is_answered_even_when_the_queue_is_full(redis_client):
    client = app_with(redis_client, max_queued_per_model=1)
    first = submit(client, **{"Idempotency-Key": "k1"})
    replay = submit(client, **{"Idempotency-Key": "k1"})
    assert first.status_code == 202 and replay.status_code == 202
    assert replay.get_json()["id"] == first.get_json()["id"]


def test_the_rate_limit_answers_429_with_retry_after_per_key(redis_client):
    client = app_with(redis_client, rate_limit_per_key=1.0, rate_limit_burst=2)
    codes = [submit(client).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    limited = submit(client)
    assert limited.headers["Retry-After"] == "1" and limited.get_json()["status"] == 429


def test_tokens_refill_at_the_configured_rate(redis_client):
    limiter = RateLimiter(redis_client, per_second=2.0, burst=1)
    now = time.time()
    limiter.check("key-a", now)
    limiter.check("key-b", now)  # another key has its own bucket
    try:
        limiter.check("key-a", now + 0.1)
        raise AssertionError("expected 429")
    except Exception as exc:
        assert exc.status == 429
    limiter.check("key-a", now + 0.6)  # half a second later a token is back


def test_throughput_counts_jobs_ended_per_second(redis_client):
    store = JobStore(redis_client, 60)
    for n in range(30):
        job = Job(id=f"t{n}", model="m", model_version="1")
        submit_job(store, job)
        store.fail(job, "E", "m")
    now = time.time()
    rate = throughput.jobs_per_second(redis_client, "m", now)
    assert 30 / 40 <= rate <= 30 / 30
    assert throughput.jobs_per_second(redis_client, "m", now + 100) == 0


def test_out_of_order_clocks_do_not_refill_the_same_interval_twice(redis_client):
    limiter = RateLimiter(redis_client, per_second=10.0, burst=1)
    limiter.check("k", 100.0)
    limiter.check("k", 100.2)  # a token refilled (the burst caps it at one)
    granted = 0
    for now in (100.05, 100.2, 100.15, 100.2):  # requests whose clocks run slightly behind
        try:
            limiter.check("k", now)
            granted += 1
        except Exception as exc:
            assert exc.status == 429
    assert granted == 0


def test_a_submit_refused_by_the_cap_stores_nothing_at_all(redis_client):
    queue = JobQueue(redis_client, JobStore(redis_client, 60), max_queued_per_model=2)
    for n in range(2):
        queue.submit(Job(id=f"in{n}", model="m", model_version="1", instances_json=b"[[1]]"))
    with pytest.raises(QueueFull) as refused:
        queue.submit(Job(id="out", model="m", model_version="1", instances_json=b"[[1]]"))
    assert refused.value.backlog == 2
    assert not redis_client.exists(keys.job("out"))
    assert waiting_count(redis_client, "m") == 2
    assert redis_client.hget(keys.METRICS_SUBMITTED, "m") == b"2"
    assert redis_client.hgetall(keys.pending("m")) == {b"1": b"2"}


def test_the_cap_counts_unfinished_jobs_of_every_version(redis_client):
    store = JobStore(redis_client, 60)
    queue = JobQueue(redis_client, store, max_queued_per_model=2)
    old = Job(id="old", model="m", model_version="1", instances_json=b"[[1]]")
    queue.submit(old)
    queue.submit(Job(id="new", model="m", model_version="2", instances_json=b"[[1]]"))
    with pytest.raises(QueueFull):
        queue.submit(Job(id="more", model="m", model_version="2", instances_json=b"[[1]]"))
    store.succeed(old, b"[1]")  # an ended job makes room
    queue.submit(Job(id="more", model="m", model_version="2", instances_json=b"[[1]]"))
    assert redis_client.exists(keys.job("more"))
