"""The /metrics exposition parses with Prometheus' own parser and carries the counts."""
import time

from prometheus_client.parser import text_string_to_metric_families

from shared.job_store import JobStore
from shared.jobs import Job
from shared.lanes import Priority
from tests.unit.conftest import submit_job
from web import metrics


def families(redis_client):
    text = metrics.render(redis_client).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(family, name, **labels):
    for s in family.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_count_submissions_outcomes_queue_depth_and_latency(redis_client):
    from shared import keys
    from shared.signatures import ModelCatalog
    from tests.unit.conftest import DIGITS

    ModelCatalog(redis_client).publish(DIGITS)
    store = JobStore(redis_client, ttl_s=60)
    for index, outcome in enumerate(["ok", "ok", "fail"]):
        job = Job(id=f"j{index}", model="digits", model_version="1", created_at=time.time() - 0.03)
        submit_job(store, job)
        store.succeed(job, b"[1]") if outcome == "ok" else store.fail(job, "E", "m")
    for job_id, lane in [("w1", Priority.HIGH), ("w2", Priority.LOW), ("w3", Priority.LOW)]:  # three wait
        submit_job(store, Job(id=job_id, model="digits", model_version="1", priority=lane))
    redis_client.lpush(keys.queue("digits"), "requeued")

    found = families(redis_client)
    assert sample(found["inferq_jobs_submitted"], "inferq_jobs_submitted_total", model="digits") == 6
    finished = found["inferq_jobs_finished"]
    assert sample(finished, "inferq_jobs_finished_total", model="digits", status="succeeded") == 2
    assert sample(finished, "inferq_jobs_finished_total", model="digits", status="failed") == 1
    depth = found["inferq_queue_depth"]
    assert [sample(depth, "inferq_queue_depth", model="digits", lane=lane)
            for lane in ("high", "normal", "low", "requeued")] == [1, 0, 2, 1]
    assert sample(found["inferq_queue_oldest_age_seconds"], "inferq_queue_oldest_age_seconds",
                  model="digits", lane="normal") == 0
    latency = found["inferq_job_latency_seconds"]
    assert sample(latency, "inferq_job_latency_seconds_count", model="digits") == 3
    assert sample(latency, "inferq_job_latency_seconds_bucket", model="digits", le="0.01") == 0
    assert sample(latency, "inferq_job_latency_seconds_bucket", model="digits", le="+Inf") == 3


def test_metrics_render_with_no_traffic(redis_client):
    assert "inferq_jobs_submitted" in families(redis_client)


def test_pending_jobs_per_version_rise_on_submit_and_fall_once_on_any_ending(redis_client):
    from shared.signatures import ModelCatalog, ModelState
    from tests.unit.conftest import DIGITS

    catalog = ModelCatalog(redis_client)
    catalog.publish(DIGITS)
    catalog.set_state("digits", 2, ModelState.FAILED, "bad file")
    store = JobStore(redis_client, ttl_s=60)
    jobs = [Job(id=f"p{n}", model="digits", model_version="1") for n in range(4)]
    for job in jobs:
        submit_job(store, job)
    store.succeed(jobs[0], b"[1]")
    store.succeed(jobs[0], b"[1]")  # a redelivery's second ending changes nothing
    store.fail(jobs[1], "E", "m")
    store.cancel(jobs[2])
    assert catalog.pending("digits") == {1: 1}
    found = families(redis_client)
    assert sample(found["inferq_jobs_pending"], "inferq_jobs_pending", model="digits", version="1") == 1
    state = found["inferq_model_version_state"]
    assert sample(state, "inferq_model_version_state", model="digits", version="1", state="ready") == 1
    assert sample(state, "inferq_model_version_state", model="digits", version="2", state="failed") == 1
