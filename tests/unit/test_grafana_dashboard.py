"""The Grafana dashboard imports (valid JSON, panels with queries), and every query names a
metric the service really exports on /metrics."""
import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shared import keys
from shared.job_store import JobStore
from shared.jobs import Job
from shared.signatures import ModelCatalog
from tests.unit.conftest import DIGITS, submit_job
from web import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "inferq.json"
SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def exported_samples(redis_client) -> set[str]:
    ModelCatalog(redis_client).publish(DIGITS)
    store = JobStore(redis_client, 60)
    job = Job(id="j", model="digits", model_version="1")
    submit_job(store, job)
    store.fail(job, "E", "m")
    redis_client.hset(keys.METRICS_WEBHOOKS, "delivered", 1)
    redis_client.hset(keys.AUTOSCALER_DESIRED, "worker-digits", 1)
    redis_client.lpush(keys.recent_timings("digits"), json.dumps(
        {"queued_ms": 1, "batch_wait_ms": 1, "inference_ms": 1, "latency_ms": 3}))
    text = metrics.render(redis_client).decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_dashboard_is_importable_json_with_queries():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "inferq" and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


def test_every_panel_query_names_a_metric_the_service_exports(redis_client):
    exported = exported_samples(redis_client)
    queried = {name for panel in json.loads(DASHBOARD.read_text())["panels"] for target in panel["targets"]
               for name in re.findall(r"\binferq_[a-z_]+", target["expr"])}
    assert len(queried) >= 10
    missing = sorted(name for name in queried if name not in exported)
    assert not missing, f"queried but not exported: {missing}"


def test_the_panels_cover_what_the_page_shows():
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in ("backlog", "oldest", "workers", "throughput", "p99", "batch", "webhook", "failed"):
        assert topic in titles
