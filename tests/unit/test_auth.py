"""API keys: bearer auth on /v1, open probes, and jobs that belong to their key."""
import pytest

from shared.settings import Settings
from shared.signatures import ModelCatalog
from tests.unit.conftest import DIGITS, digit_image
from web.app import create_app


@pytest.fixture
def keyed(redis_client, tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# team b\nkey-b\n")
    ModelCatalog(redis_client).publish(DIGITS)
    settings = Settings(api_keys="key-a", api_keys_file=str(key_file), max_body_bytes=64 * 1024)
    return create_app(settings, redis_client=redis_client).test_client()


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def test_v1_routes_need_a_valid_key(keyed):
    for headers in ({}, bearer("wrong"), {"Authorization": "Basic a2V5LWE="}):
        response = keyed.get("/v1/models", headers=headers)
        assert response.status_code == 401 and response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert keyed.get("/v1/models", headers=bearer("key-a")).status_code == 200
    assert keyed.get("/v1/models", headers=bearer("key-b")).status_code == 200


def test_probes_metrics_and_the_document_stay_open(keyed):
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/metrics").status_code == 200
    assert keyed.get("/openapi.json").status_code == 200


def test_another_keys_job_is_a_404(keyed):
    job_id = keyed.post("/v1/models/digits/jobs", json={"instances": [digit_image()]},
                        headers=bearer("key-a")).get_json()["id"]
    assert keyed.get(f"/v1/jobs/{job_id}", headers=bearer("key-a")).status_code == 200
    assert keyed.get(f"/v1/jobs/{job_id}", headers=bearer("key-b")).status_code == 404
    assert keyed.delete(f"/v1/jobs/{job_id}", headers=bearer("key-b")).status_code == 404
    assert keyed.get(f"/v1/jobs/{job_id}/deliveries", headers=bearer("key-b")).status_code == 404


def test_idempotency_keys_are_per_api_key(keyed):
    body = {"instances": [digit_image()]}
    first = keyed.post("/v1/models/digits/jobs", json=body, headers={**bearer("key-a"), "Idempotency-Key": "k1"})
    other = keyed.post("/v1/models/digits/jobs", json=body, headers={**bearer("key-b"), "Idempotency-Key": "k1"})
    again = keyed.post("/v1/models/digits/jobs", json=body, headers={**bearer("key-a"), "Idempotency-Key": "k1"})
    assert first.get_json()["id"] == again.get_json()["id"] != other.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_blank_idempotency_key_is_400(client):
    response = client.post("/v1/models/digits/jobs", json={"instances": [digit_image()]},
                           headers={"Idempotency-Key": ""})
    assert response.status_code == 400


def test_long_polling_another_keys_job_is_an_immediate_404(keyed):
    import time

    job_id = keyed.post("/v1/models/digits/jobs", json={"instances": [digit_image()]},
                        headers=bearer("key-a")).get_json()["id"]
    started = time.monotonic()
    assert keyed.get(f"/v1/jobs/{job_id}?wait=2", headers=bearer("key-b")).status_code == 404
    assert time.monotonic() - started < 1.5
