import time

import orjson

from shared import keys
from shared.job_store import JobStore, StartOutcome
from shared.jobs import Job, JobStatus, latency_bucket, rfc3339
from tests.unit.conftest import submit_job


def make_job(store: JobStore, created_at: float | None = None) -> Job:
    job = Job(id="job-1", model="digits", model_version="1", instances_json=b"[[1]]",
              created_at=created_at or time.time())
    submit_job(store, job)
    return job


def test_created_job_is_queued_with_a_ttl(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    make_job(store)
    job = store.get("job-1")
    assert job.status is JobStatus.QUEUED
    assert job.instances_json == b"[[1]]"
    assert 0 < redis_client.ttl(keys.job("job-1")) <= 60
    assert redis_client.hget(keys.METRICS_SUBMITTED, "digits") == b"1"


def test_unknown_job_is_none(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    assert store.get("nope") is None
    assert store.get_status("nope") is None


def test_start_moves_to_running_and_counts_attempts(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    make_job(store)
    started = store.start("job-1", "w1").job
    assert started.status is JobStatus.RUNNING and started.attempts == 1
    assert store.get("job-1").status is JobStatus.RUNNING
    assert store.start("job-1", "w2").job.attempts == 2  # a redelivery after a lost worker


def test_success_stores_predictions_and_publishes_completion(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = make_job(store)
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.JOB_FINISHED_CHANNEL)
    running = store.start(job.id, "w1").job
    assert store.succeed(running, b"[[0.5,0.5]]", timings={"run_ms": 1.5}, labels_json=b'[[{"label":"a"}]]') is True
    stored = store.get(job.id)
    assert stored.status is JobStatus.SUCCEEDED
    assert orjson.loads(orjson.dumps(stored.to_public()))["predictions"] == [[0.5, 0.5]]
    messages = [pubsub.get_message(timeout=1) for _ in range(2)]
    [data] = [m["data"] for m in messages if m and m["type"] == "message"]
    job_id, _, announced = data.partition(b"\n")
    # The finish announces the job exactly as GET shows it, so a long-poll need not read it back.
    assert job_id == b"job-1" and orjson.loads(announced) == orjson.loads(orjson.dumps(stored.to_public()))


def test_a_finish_from_a_copy_that_missed_a_start_announces_only_the_id(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = make_job(store)  # this copy has no started_at; the stored job has one
    store.start(job.id, "w1")
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.JOB_FINISHED_CHANNEL)
    assert store.cancel(job) is True
    messages = [pubsub.get_message(timeout=1) for _ in range(2)]
    assert [m["data"] for m in messages if m and m["type"] == "message"] == [b"job-1"]


def test_a_finished_job_is_never_overwritten(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = make_job(store)
    store.start(job.id, "w1")
    assert store.succeed(job, b"[1]")
    assert store.fail(job, "Boom", "late duplicate") is False
    assert store.succeed(job, b"[2]") is False
    assert store.start(job.id, "w2").outcome is StartOutcome.ALREADY_FINISHED
    stored = store.get(job.id)
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.predictions_json == b"[1]"
    assert redis_client.hget(keys.METRICS_FINISHED, "digits|succeeded") == b"1"


def test_failure_records_a_typed_error(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = make_job(store)
    store.start(job.id, "w1")
    assert store.fail(job, "ValueError", "bad output")
    public = store.get(job.id).to_public()
    assert public["status"] == "failed"
    assert public["error"] == {"type": "ValueError", "message": "bad output"}
    assert "predictions" not in public


def test_transitions_on_an_expired_job_do_not_recreate_it(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = make_job(store)
    redis_client.delete(keys.job(job.id))
    assert store.start(job.id, "w1").outcome is StartOutcome.GONE
    assert store.succeed(job, b"[1]") is False
    assert not redis_client.exists(keys.job(job.id))


def test_latency_lands_in_the_histogram(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = make_job(store, created_at=time.time() - 0.2)
    store.succeed(job, b"[1]")
    histogram = redis_client.hgetall(keys.latency_histogram("digits"))
    assert histogram[b"0.25"] == b"1"
    assert histogram[b"count"] == b"1"
    assert 0.2 <= float(histogram[b"sum"]) < 5


def test_latency_bucket_boundaries():
    assert latency_bucket(0.005) == "0.005"
    assert latency_bucket(0.0051) == "0.01"
    assert latency_bucket(10_000) == "+Inf"


def test_timestamps_are_rfc3339_utc():
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(None) is None


def test_start_many_reports_each_job_in_order(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = make_job(store)
    finished = Job(id="job-2", model="digits", model_version="1")
    submit_job(store, finished)
    store.fail(finished, "E", "m")
    started = store.start_many([job.id, "missing", finished.id], "w1")
    assert started[0].job.id == job.id and started[0].job.status is JobStatus.RUNNING
    assert [s.outcome for s in started[1:]] == [StartOutcome.GONE, StartOutcome.ALREADY_FINISHED]


def test_timings_are_stored_with_the_result(redis_client):
    store = JobStore(redis_client, ttl_s=60)
    job = make_job(store)
    store.succeed(job, b"[1]", timings={"queued_ms": 1.5, "batch_size": 4})
    assert store.get(job.id).to_public()["timings"] == {"queued_ms": 1.5, "batch_size": 4}


def test_catalog_cache_spares_reads_until_its_ttl_passes(redis_client):
    from shared.signatures import ModelCatalog
    from tests.unit.conftest import DIGITS

    ModelCatalog(redis_client).publish(DIGITS)
    cached = ModelCatalog(redis_client, cache_ttl_s=60)
    assert cached.latest("digits").version == 1
    redis_client.delete("inferq:model:digits")
    assert cached.latest("digits").version == 1
    assert ModelCatalog(redis_client).latest("digits") is None
