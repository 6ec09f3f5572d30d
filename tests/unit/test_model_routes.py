"""Model metadata, version states, named inputs, image uploads and the TF Serving routes,
on fakeredis (no worker runs here: routing and validation only)."""
import dataclasses
import io

import numpy as np
import orjson
import pytest
from PIL import Image

from shared import keys
from shared.job_store import JobStore
from shared.signatures import ModelCatalog, ModelSignature, ModelState, TensorSpec
from tests.unit.conftest import digit_image
from web import images

PAIR = ModelSignature(
    name="pair", version=3,
    inputs=(TensorSpec("a", (None, 3), "float32"), TensorSpec("b", (None, 2), "int32")),
    outputs=(TensorSpec("score", (None, 1), "float32"),),
)

GREY = ModelSignature(
    name="grey", version=1,
    inputs=(TensorSpec("pixels", (None, 4, 4, 1), "float32"),),
    outputs=(TensorSpec("probabilities", (None, 2), "float32"),),
    config={"preprocessing": {"image": {"scale": 0.5, "offset": 1.0, "invert": True}}},
)


@pytest.fixture
def catalog(redis_client):
    catalog = ModelCatalog(redis_client)
    catalog.publish(PAIR)
    catalog.publish(GREY)
    return catalog


def stored_input(redis_client, response):
    job_id = response.get_json()["id"]
    return JobStore(redis_client, 60).get(job_id)


def test_named_rows_are_stored_as_columns_in_the_models_input_order(client, catalog, redis_client):
    response = client.post("/v1/models/pair/jobs", json={"instances": [
        {"b": [1, 2], "a": [0.5, 1, 2]}, {"a": [3, 4, 5], "b": [3, 4]}]})
    assert response.status_code == 202, response.get_json()
    job = stored_input(redis_client, response)
    assert orjson.loads(job.instances_json) == {"a": [[0.5, 1, 2], [3, 4, 5]], "b": [[1, 2], [3, 4]]}
    assert job.model_version == "3"


def test_tf_serving_columns_are_accepted_as_they_are(client, catalog, redis_client):
    response = client.post("/v1/models/pair/jobs", json={"inputs": {"a": [[1, 2, 3]], "b": [[7, 8]]}})
    assert response.status_code == 202
    assert orjson.loads(stored_input(redis_client, response).instances_json) == {"a": [[1, 2, 3]], "b": [[7, 8]]}


@pytest.mark.parametrize("body, detail", [
    ({"instances": [{"a": [1, 2, 3], "b": [1]}]}, "instances[0].b has shape (1,), model pair expects (2,)"),
    ({"instances": [{"a": [1, 2, 3]}]}, "instances[0] lacks 'b'; model pair takes inputs a, b"),
    ({"instances": [{"a": [1, 2, 3], "b": [1, 2], "c": 1}]}, "instances[0] has unknown 'c'; model pair takes inputs a, b"),
    ({"instances": [[1, 2, 3]]}, "model pair takes named inputs a, b"),
    ({"inputs": {"a": [[1, 2, 3], [4, 5, 6]], "b": [[1, 2]]}}, "every named input must hold the same number"),
    ({"inputs": {"a": [[1, 2, 3]], "b": [[1.5, 2]]}}, "inputs.b[0][0] = 1.5 is not an integer"),
    ({"inputs": [[1, 2, 3]]}, "'inputs' must be an object with one list per input"),
    ({"instances": [{"a": [1, 2, 3], "b": [1, 2]}], "inputs": {}}, "body"),
])
def test_named_input_mistakes_are_422_naming_the_instance_and_input(client, catalog, body, detail):
    response = client.post("/v1/models/pair/jobs", json=body)
    assert response.status_code == 422, response.get_json()
    assert detail in response.get_json()["detail"]


def test_a_shape_error_reports_index_input_expected_and_received(client, catalog):
    problem = client.post("/v1/models/pair/jobs", json={"inputs": {"a": [[1, 2, 3], [1, 2]], "b": [[1, 2]] * 2}}).get_json()
    assert (problem["instance"], problem["input"], problem["expected_shape"], problem["received_shape"]) == (1, "a", [3], [2])


def test_npy_is_refused_for_a_multi_input_model(client, catalog):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 3), np.float32))
    response = client.post("/v1/models/pair/jobs", data=buffer.getvalue(), content_type="application/x-npy")
    assert response.status_code == 422 and "send JSON instead" in response.get_json()["detail"]


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_image_upload_becomes_the_preprocessed_tensor(client, catalog, redis_client):
    pixels = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    response = client.post("/v1/models/grey/jobs", content_type="multipart/form-data",
                           data={"image": (io.BytesIO(png(pixels)), "a.png"),
                                 "second": (io.BytesIO(png(255 - pixels)), "b.png")})
    assert response.status_code == 202, response.get_json()
    array = np.load(io.BytesIO(stored_input(redis_client, response).input_npy))
    assert array.shape == (2, 4, 4, 1) and array.dtype == np.float32
    np.testing.assert_allclose(array[0, :, :, 0], (255.0 - pixels) * 0.5 + 1.0)
    np.testing.assert_allclose(array[1, :, :, 0], pixels * 0.5 + 1.0)


PHOTO = ModelSignature(
    name="photo", version=1,
    inputs=(TensorSpec("pixels", (None, 4, 4, 3), "float32"),),
    outputs=(TensorSpec("probabilities", (None, 2), "float32"),),
    config={"preprocessing": {"image": {"mode": "RGB"}}},
)


def test_uploads_whose_preprocessing_keeps_the_pixels_are_queued_as_uint8_pixels():
    """A quarter of float32's bytes through Redis; the worker casts them to the input's dtype."""
    pixels = (np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, format="PNG")
    array = images.to_array([("a.png", buffer.getvalue())], PHOTO, 1000)
    assert array.dtype == np.uint8 and array.shape == (1, 4, 4, 3)
    np.testing.assert_array_equal(array[0], pixels)


def test_uploads_to_an_integer_input_keep_its_dtype():
    integer = dataclasses.replace(PHOTO, inputs=(TensorSpec("pixels", (None, 4, 4, 3), "int32"),))
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4, 3), 200, np.uint8), mode="RGB").save(buffer, format="PNG")
    array = images.to_array([("a.png", buffer.getvalue())], integer, 1000)
    assert array.dtype == np.int32 and int(array.max()) == 200


def test_a_model_without_image_preprocessing_refuses_uploads_with_415(client, catalog):
    response = client.post("/v1/models/digits/jobs", content_type="multipart/form-data",
                           data={"image": (io.BytesIO(png(np.zeros((8, 8)))), "a.png")})
    assert response.status_code == 415 and "preprocessing.image" in response.get_json()["detail"]


@pytest.mark.parametrize("files, detail", [
    ({}, "holds no image file"),
    ({"image": (io.BytesIO(b"GIF89a not really"), "x.gif")}, "is not a readable PNG or JPEG"),
])
def test_bad_uploads_are_422(client, catalog, files, detail):
    response = client.post("/v1/models/grey/jobs", content_type="multipart/form-data", data=files)
    assert response.status_code == 422 and detail in response.get_json()["detail"]


def test_a_failed_version_is_listed_with_its_reason_and_is_never_routed(client, catalog, redis_client):
    catalog.set_state("pair", 4, ModelState.FAILED, "OSError: not a zip file")
    model = client.get("/v1/models/pair").get_json()
    assert model["latest_version"] == 3 and model["versions"] == [3]
    assert {"version": 4, "state": "failed", "reason": "OSError: not a zip file"} in model["version_states"]
    assert model["model_version_status"][0] == {
        "version": "4", "state": "END", "status": {"error_code": "UNKNOWN", "error_message": "OSError: not a zip file"}}
    version = client.get("/v1/models/pair/versions/4").get_json()
    assert version["state"] == "failed" and "not a zip" in version["reason"]
    assert client.post("/v1/models/pair/versions/4/jobs", json={"inputs": {"a": [[1, 2, 3]], "b": [[1, 2]]}}).status_code == 404


def test_a_model_whose_only_version_failed_is_listed_as_failed(client, catalog):
    catalog.set_state("broken", 1, ModelState.FAILED, "ValueError: bad")
    model = client.get("/v1/models/broken").get_json()
    assert (model["state"], model["reason"], model["versions"]) == ("failed", "ValueError: bad", [])
    assert client.post("/v1/models/broken/jobs", json={"instances": [[1]]}).status_code == 404


def test_a_withdrawn_version_stops_being_routed(client, catalog, redis_client):
    client.application.extensions["inferq"].catalog.cache_ttl_s = 0  # web caches routes for 2 s
    catalog.publish(ModelSignature("pair", 5, PAIR.inputs, PAIR.outputs))
    body = {"inputs": {"a": [[1, 2, 3]], "b": [[1, 2]]}}
    assert client.post("/v1/models/pair/jobs", json=body).get_json()["model_version"] == "5"
    catalog.withdraw("pair", 5)
    assert client.post("/v1/models/pair/jobs", json=body).get_json()["model_version"] == "3"
    assert client.get("/v1/models/pair/versions/5").get_json()["state"] == "retiring"


def test_submits_count_pending_jobs_per_version(client, catalog, redis_client):
    for _ in range(3):
        client.post("/v1/models/digits/jobs", json={"instances": [digit_image()]})
    assert catalog.pending("digits") == {1: 3}


def test_reload_notifies_workers_over_pub_sub(client, redis_client):
    listener = redis_client.pubsub()
    listener.subscribe(keys.MODELS_RELOAD_CHANNEL)
    response = client.post("/v1/models:reload")
    assert response.status_code == 202 and response.get_json() == {"workers_notified": 1}


def test_predict_routes_are_not_mistaken_for_model_names(client, catalog):
    response = client.post("/v1/models/digits:predict", json={"instances": [[1, 2]]})
    assert response.status_code == 422 and "expects (8, 8)" in response.get_json()["detail"]
    missing = client.post("/v1/models/nope:predict", json={"instances": [[1]]}).get_json()
    assert missing["status"] == 404 and missing["error"].startswith("Servable not found")
    assert client.post("/v1/models/digits/versions/9:predict", json={"instances": [[1]]}).status_code == 404
    assert client.post("/v1/models/digits:predict", json={"instances": [digit_image()],
                                                           "signature_name": "other"}).status_code == 422


def test_predict_reads_json_whatever_the_content_type_as_tf_serving_does(client, catalog):
    """TF Serving's documented call is ``curl -d '{...}'``, which curl sends form-encoded."""
    body = b'{"instances": [[1, 2]]}'
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        response = client.post("/v1/models/digits:predict", data=body, content_type=content_type)
        assert response.status_code == 422 and "expects (8, 8)" in response.get_json()["detail"]
    assert client.post("/v1/models/digits:predict", data=body, content_type="application/xml").status_code == 415
