"""Jobs flow through nginx, gunicorn, Redis and a real Celery worker with the real model."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests

from tests.integration.helpers import submit, wait_for


def test_predictions_over_http_equal_model_called_in_process(stack, http, digits, digits_model):
    images = digits.images[:32]
    response = submit(http, stack.url, "digits", images.tolist())
    assert response.status_code == 202
    assert response.headers["Location"] == f"/v1/jobs/{response.json()['id']}"
    job = wait_for(http, stack.url, response.json()["id"])
    assert job["status"] == "succeeded", job
    expected = np.asarray(digits_model(images.astype(np.float32), training=False))
    np.testing.assert_allclose(np.asarray(job["predictions"]), expected, rtol=1e-5, atol=1e-6)
    assert job["model_version"] == "1"
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]


def test_a_hundred_concurrent_single_instance_jobs_all_succeed(stack, digits):
    images = digits.images[:100].tolist()

    def one(image):
        with requests.Session() as session:
            accepted = submit(session, stack.url, "digits", [image])
            assert accepted.status_code == 202, accepted.text
            return wait_for(session, stack.url, accepted.json()["id"])

    with ThreadPoolExecutor(max_workers=32) as pool:
        jobs = list(pool.map(one, images))
    assert [job["status"] for job in jobs] == ["succeeded"] * 100
    predicted = [int(np.argmax(job["predictions"][0])) for job in jobs]
    accuracy = np.mean(np.asarray(predicted) == digits.target[:100])
    assert accuracy >= 0.95


def test_a_hundred_instance_job_succeeds(stack, http, digits):
    images = digits.images[100:200]
    job = wait_for(http, stack.url, submit(http, stack.url, "digits", images.tolist()).json()["id"])
    assert job["status"] == "succeeded"
    assert np.asarray(job["predictions"]).shape == (100, 10)
    assert np.mean(np.argmax(job["predictions"], axis=1) == digits.target[100:200]) >= 0.95


def test_job_moves_from_queued_to_running_to_succeeded(stack, http, digits):
    accepted = submit(http, stack.url, "digits", digits.images[:1].tolist()).json()
    assert accepted["status"] == "queued"
    assert accepted["started_at"] is None and accepted["finished_at"] is None
    assert "predictions" not in accepted
    done = wait_for(http, stack.url, accepted["id"])
    assert done["status"] == "succeeded" and len(done["predictions"]) == 1
    assert abs(sum(done["predictions"][0]) - 1.0) < 1e-4


def test_a_job_whose_model_raises_ends_failed(stack, http):
    bad = wait_for(http, stack.url, submit(http, stack.url, "faulty", [[1, 2, 3, 150]]).json()["id"])
    assert bad["status"] == "failed"
    assert bad["error"]["type"] == "InvalidArgumentError"
    assert "failure limit" in bad["error"]["message"]
    assert "predictions" not in bad
    good = wait_for(http, stack.url, submit(http, stack.url, "faulty", [[1, 2, 3, 4]]).json()["id"])
    assert good["status"] == "succeeded" and len(good["predictions"][0]) == 2


def test_prefer_wait_answers_200_with_the_finished_job(stack, http, digits):
    response = submit(http, stack.url, "digits", digits.images[:2].tolist(), headers={"Prefer": "wait=20"})
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert response.headers["Location"].endswith(response.json()["id"])


def test_npy_input_predicts_the_same_as_json(stack, http, digits):
    import io

    images = digits.images[:5]
    buffer = io.BytesIO()
    np.save(buffer, images.astype(np.uint8), allow_pickle=False)
    binary = http.post(f"{stack.url}/v1/models/digits/jobs", data=buffer.getvalue(),
                       headers={"Content-Type": "application/x-npy", "Prefer": "wait=20"}, timeout=30)
    assert binary.status_code in (200, 202), binary.text
    from_npy = wait_for(http, stack.url, binary.json()["id"])
    from_json = wait_for(http, stack.url, submit(http, stack.url, "digits", images.tolist()).json()["id"])
    assert from_npy["status"] == from_json["status"] == "succeeded"
    np.testing.assert_allclose(from_npy["predictions"], from_json["predictions"], rtol=1e-6)
