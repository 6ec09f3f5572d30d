"""Error mapping of the API: every bad input gets problem+json with the right status."""
import orjson
import pytest

from shared import celery_message, keys
from shared.tasks import PREDICT_TASK
from tests.fixtures.lanes import waiting_messages
from tests.unit.conftest import digit_image

PROBLEM = "application/problem+json"


def post(client, body, content_type="application/json", model="digits", **kwargs):
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(f"/v1/models/{model}/jobs", data=data, content_type=content_type, **kwargs)


def assert_problem(response, status):
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM
    problem = response.get_json(force=True)
    assert problem["status"] == status
    assert problem["type"].startswith("https://inferq.dev/problems/")
    assert problem["title"] and problem["detail"]
    return problem


def test_valid_submit_is_accepted_and_queued(client, redis_client):
    response = post(client, {"instances": [digit_image()]})
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["model"] == "digits" and job["model_version"] == "1"
    queued = waiting_messages(redis_client, "digits")
    assert [celery_message.job_id_of(m, PREDICT_TASK) for m in queued] == [job["id"]]
    assert client.get(response.headers["Location"]).get_json()["status"] == "queued"


@pytest.mark.parametrize("body", [b"{", b'{"instances": [NaN]}', b'{"instances": [Infinity]}',
                                  b'{"instances": [-Infinity]}', b"[" * 20_000 + b"]" * 20_000,
                                  b'{"instances": [1' + b"0" * 5000 + b"]}"])
def test_malformed_json_is_400(client, body):
    assert_problem(post(client, body), 400)


def test_unknown_model_is_404(client):
    problem = assert_problem(post(client, {"instances": [digit_image()]}, model="nope"), 404)
    assert "nope" in problem["detail"]


@pytest.mark.parametrize("name", ["é" * 10, "x" * 300, "..", "a b"])
def test_odd_model_names_are_404(client, name):
    assert_problem(post(client, {"instances": [digit_image()]}, model=name), 404)


def test_unknown_job_is_404(client):
    assert_problem(client.get("/v1/jobs/does-not-exist"), 404)


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/v2/everything"), 404)


def test_wrong_method_is_405_problem(client):
    assert_problem(client.delete("/v1/models"), 405)


def test_body_over_limit_is_413(client, settings):
    body = b'{"instances": [' + b"1," * settings.max_body_bytes + b"1]}"
    assert_problem(post(client, body), 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_wrong_content_type_is_415(client, content_type):
    assert_problem(post(client, {"instances": [digit_image()]}, content_type=content_type), 415)


def test_shape_mismatch_is_422_naming_the_shapes(client):
    problem = assert_problem(post(client, {"instances": [[1, 2, 3]]}), 422)
    assert problem["detail"] == "instances[0] has shape (3,), model digits expects (8, 8)"
    assert problem["instance"] == 0 and problem["expected_shape"] == [8, 8]


@pytest.mark.parametrize("body", [{"instances": []}, {"instances": "x"}, {"inputs": [1]},
                                  {"instances": [digit_image()], "extra": 1}])
def test_bodies_that_do_not_fit_are_422(client, body):
    assert_problem(post(client, body), 422)


def test_non_object_body_is_400(client):
    assert_problem(post(client, [1, 2]), 400)


def test_invalid_wait_is_400(client):
    job_id = post(client, {"instances": [digit_image()]}).get_json()["id"]
    assert_problem(client.get(f"/v1/jobs/{job_id}?wait=soon"), 400)
    assert_problem(client.get(f"/v1/jobs/{job_id}?wait=-1"), 400)
    assert_problem(client.get(f"/v1/jobs/{job_id}?wait=nan"), 400)


def test_redis_down_is_503_with_retry_after(settings):
    import redis

    from web.app import create_app

    dead = redis.Redis(port=1, socket_connect_timeout=0.2)
    app = create_app(settings, redis_client=dead)
    response = post(app.test_client(), {"instances": [digit_image()]})
    assert_problem(response, 503)
    assert response.headers["Retry-After"]


def test_readyz_is_503_until_a_model_is_published(settings, redis_client):
    from web.app import create_app

    app = create_app(settings, redis_client=redis_client)
    assert_problem(app.test_client().get("/readyz"), 503)


def test_models_lists_published_signatures(client):
    body = client.get("/v1/models").get_json()
    [model] = body["models"]
    assert {k: model[k] for k in ("name", "versions", "latest_version", "state", "inputs", "outputs")} == {
        "name": "digits", "versions": [1], "latest_version": 1, "state": "ready",
        "inputs": [{"name": "image", "shape": [None, 8, 8], "dtype": "float32"}],
        "outputs": [{"name": "probabilities", "shape": [None, 10], "dtype": "float32"}],
    }
    assert model["version_states"] == [{"version": 1, "state": "ready"}]
    assert model["model_version_status"] == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]


def npy(array) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def test_npy_bodies_are_accepted_and_stored_as_sent(client, redis_client):
    import numpy as np

    body = npy(np.zeros((2, 8, 8), dtype=np.uint8))
    response = post(client, body, content_type="application/x-npy")
    assert response.status_code == 202
    stored = redis_client.hget(keys.job(response.get_json()["id"]), "input_npy")
    assert stored == body


def test_npy_shape_mismatch_is_422(client):
    import numpy as np

    problem = assert_problem(post(client, npy(np.zeros((2, 3))), content_type="application/x-npy"), 422)
    assert problem["detail"] == "instances have shape (3,), model digits expects (8, 8)"


def test_pickled_or_broken_npy_is_400(client):
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert_problem(post(client, buffer.getvalue(), content_type="application/x-npy"), 400)
    assert_problem(post(client, b"\x93NUMPY garbage", content_type="application/x-npy"), 400)


def test_cancel_ends_a_queued_job_and_a_second_cancel_is_409(client):
    job_id = post(client, {"instances": [digit_image()]}).get_json()["id"]
    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 200 and response.get_json()["status"] == "canceled"
    assert response.get_json()["finished_at"] is not None
    assert_problem(client.delete(f"/v1/jobs/{job_id}"), 409)
    assert_problem(client.delete("/v1/jobs/unknown"), 404)
