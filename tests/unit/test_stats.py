"""The dashboard's figures: percentiles, per-model snapshots, the shared history ring, and
the routes (the page is open; the figures need a key when keys are set)."""
import orjson

from shared import keys
from shared.job_store import JobStore
from shared.jobs import Job
from shared.settings import Settings
from shared.signatures import ModelCatalog
from tests.unit.conftest import DIGITS, submit_job
from web import stats
from web.app import create_app


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert (stats.percentile(values, 50), stats.percentile(values, 99)) == (50, 99)
    assert stats.percentile([], 50) is None and stats.percentile([7.0], 99) == 7.0


def test_a_snapshot_carries_backlog_latency_split_batch_sizes_and_failures(redis_client):
    ModelCatalog(redis_client).publish(DIGITS)
    store = JobStore(redis_client, 60)
    for n in range(3):
        submit_job(store, Job(id=f"q{n}", model="digits", model_version="1"))
    failed = Job(id="bad", model="digits", model_version="1")
    submit_job(store, failed)
    store.fail(failed, "ValueError", "no good")
    for n in range(100):
        redis_client.lpush(keys.recent_timings("digits"), orjson.dumps(
            {"queued_ms": n, "batch_wait_ms": 1.0, "inference_ms": 2.0, "latency_ms": n + 3.0}))
    redis_client.hset(keys.batch_size_histogram("digits"), mapping={"4": 5, "32": 2, "sum": 84, "count": 7})
    redis_client.hset(keys.AUTOSCALER_DESIRED, "worker-digits", 2)
    now = stats.snapshot(redis_client)
    digits = now["models"]["digits"]
    assert digits["backlog"] == 3 and digits["desired_workers"] == 2 and digits["instances_total"] == 84
    assert digits["latency_ms"]["queued_ms"] == {"p50": 49, "p99": 98}
    assert digits["batch_sizes"]["4"] == 5 and digits["batch_sizes"]["32"] == 2
    [failure] = now["failed_jobs"]
    assert failure["id"] == "bad" and failure["model"] == "digits"
    assert orjson.loads(failure["error"]) == {"type": "ValueError", "message": "no good"}


def test_one_snapshot_per_slot_is_stored_whoever_records_it(redis_client):
    ModelCatalog(redis_client).publish(DIGITS)
    assert stats.record(redis_client, now=1000.0) is True
    assert stats.record(redis_client, now=1000.5) is False  # another process, same slot
    redis_client.hset(keys.batch_size_histogram("digits"), "sum", 600)
    assert stats.record(redis_client, now=1002.0) is True
    points = stats.history(redis_client)
    assert [p["at"] for p in points] == [1000.0, 1002.0]
    assert points[1]["models"]["digits"]["instances_per_second"] == 300.0


def test_the_history_is_bounded_to_fifteen_minutes(redis_client):
    ModelCatalog(redis_client).publish(DIGITS)
    for slot in range(stats.HISTORY_LENGTH + 10):
        stats.record(redis_client, now=slot * stats.SLOT_S)
    assert redis_client.llen(keys.STATS_HISTORY) == stats.HISTORY_LENGTH == 450


def test_the_page_is_open_and_the_figures_need_a_key(redis_client):
    ModelCatalog(redis_client).publish(DIGITS)
    client = create_app(Settings(api_keys="sekrit"), redis_client=redis_client).test_client()
    page = client.get("/dashboard")
    assert page.status_code == 200 and b"/v1/stats" in page.data
    external = page.data.replace(b"http://www.w3.org/2000/svg", b"")  # the SVG namespace is a name, not a fetch
    assert b"http://" not in external and b"https://" not in external
    assert client.get("/v1/stats").status_code == 401
    body = client.get("/v1/stats", headers={"Authorization": "Bearer sekrit"}).get_json()
    assert "digits" in body["models"] and len(body["history"]) == 1
