"""Operator routes and views: with keys on, only operator keys reload models or see other keys'
jobs in the stats; redeliveries are rate-limited; /metrics can be kept to the ops listener."""
from __future__ import annotations

import orjson
import pytest

from shared import keys
from shared.settings import Settings
from shared.signatures import ModelCatalog
from tests.unit.conftest import DIGITS, digit_image
from web.app import create_app


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(redis_client):
    ModelCatalog(redis_client).publish(DIGITS)
    settings = Settings(api_keys="key-a,key-b", admin_keys="op-key", max_body_bytes=64 * 1024)
    return create_app(settings, redis_client=redis_client).test_client()


def test_reloading_models_needs_an_operator_key_once_keys_are_on(keyed):
    refused = keyed.post("/v1/models:reload", headers=bearer("key-a"))
    assert refused.status_code == 403 and "operator key" in refused.get_json()["detail"]
    assert keyed.post("/v1/models:reload", headers=bearer("op-key")).status_code == 202
    assert keyed.post("/v1/models:reload").status_code == 401


def test_an_operator_key_is_also_an_api_key(keyed):
    response = keyed.post("/v1/models/digits/jobs", json={"instances": [digit_image()]}, headers=bearer("op-key"))
    assert response.status_code == 202


def failed_job_of(keyed, redis_client, key: str, url: str) -> str:
    """A job of ``key`` recorded as failed, with a dead delivery to ``url``."""
    job_id = keyed.post("/v1/models/digits/jobs", json={"instances": [digit_image()]},
                        headers=bearer(key)).get_json()["id"]
    redis_client.lpush(keys.RECENT_FAILURES, orjson.dumps({"id": job_id, "model": "digits", "error": "{}", "at": 1}))
    redis_client.lpush(keys.DEAD_WEBHOOKS, orjson.dumps({"job_id": job_id, "url": url, "outcome": "dead"}))
    return job_id


def test_stats_show_a_key_only_its_own_jobs_with_urls_cut_to_scheme_and_host(keyed, redis_client):
    mine = failed_job_of(keyed, redis_client, "key-a", "https://hooks.example.com/in?token=secret")
    theirs = failed_job_of(keyed, redis_client, "key-b", "https://other.example.com/t/secret")
    seen = keyed.get("/v1/stats", headers=bearer("key-a")).get_json()
    assert [job["id"] for job in seen["failed_jobs"]] == [mine]
    assert [(d["job_id"], d["url"]) for d in seen["dead_webhooks"]] == [(mine, "https://hooks.example.com")]
    everything = keyed.get("/v1/stats", headers=bearer("op-key")).get_json()
    assert {job["id"] for job in everything["failed_jobs"]} == {mine, theirs}
    assert "token=secret" in str(everything["dead_webhooks"])


def test_redelivering_one_job_again_and_again_is_a_429(client, redis_client):
    body = {"instances": [digit_image()], "webhook": {"url": "https://hooks.example.com/in"}}
    job_id = client.post("/v1/models/digits/jobs", json=body).get_json()["id"]
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200  # ended: its event may be redelivered
    answers = [client.post(f"/v1/jobs/{job_id}/deliveries/redeliver") for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert "of this job" in answers[-1].get_json()["detail"] and int(answers[-1].headers["Retry-After"]) > 0


def test_metrics_can_be_kept_to_the_operations_listener(redis_client):
    app = create_app(Settings(metrics_on_ops_only=True), redis_client=redis_client).test_client()
    assert app.get("/metrics").status_code == 404
    assert app.get("/metrics", headers={"X-Inferq-Listener": "public"}).status_code == 404
    assert app.get("/metrics", headers={"X-Inferq-Listener": "ops"}).status_code == 200
