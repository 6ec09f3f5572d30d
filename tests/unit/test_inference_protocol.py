"""Open Inference Protocol (v2) bodies and routes on fakeredis: every refusal is a 400/404/413
that carries both problem+json and the protocol's ``error`` member; nothing is queued for it."""
from __future__ import annotations

import io

import numpy as np
import orjson
import pytest

from shared import keys
from tests.fixtures.lanes import waiting_count
from tests.unit.conftest import DIGITS
from web import oip

INFER = "/v2/models/digits/infer"


def binary_body(header: dict, *arrays: np.ndarray) -> tuple[bytes, dict]:
    """A Triton binary request: JSON header, then the raw tensors; and its headers."""
    head = orjson.dumps(header)
    return head + b"".join(a.tobytes() for a in arrays), {oip.HEADER_LENGTH: str(len(head))}


def digits_input(batch: int = 2, **overrides) -> dict:
    tensor = {"name": "image", "shape": [batch, 8, 8], "datatype": "FP32",
              "parameters": {"binary_data_size": batch * 64 * 4}}
    tensor.update(overrides)
    return tensor


def assert_refused(response, status: int, words: str) -> dict:
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert words in body["error"] and body["error"] == body["detail"]
    return body


def test_server_metadata_lists_the_binary_tensor_extension(client):
    body = client.get("/v2").get_json()
    assert body["name"] == "inferq" and "binary_tensor_data" in body["extensions"]


def test_health_and_readiness_answer_as_the_protocol_says(client):
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    assert client.get("/v2/models/digits/ready").get_json() == {"name": "digits", "ready": True}
    assert client.get("/v2/models/digits/versions/1/ready").status_code == 200
    assert_refused(client.get("/v2/models/digits/versions/7/ready"), 404, "no version 7")
    assert_refused(client.get("/v2/models/nope/ready"), 404, "not served")


def test_model_metadata_uses_protocol_datatypes_and_minus_one_for_the_batch(client):
    body = client.get("/v2/models/digits").get_json()
    assert body["name"] == "digits" and body["versions"] == ["1"]
    assert body["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 8, 8]}]
    assert body["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get("/v2/models/digits/versions/1").get_json()["versions"] == ["1"]


def test_an_unknown_model_is_a_404_with_the_protocol_error(client):
    assert_refused(client.post("/v2/models/nope/infer", data=b"{}"), 404, "'nope' is not served")


def test_respond_async_queues_a_job_and_answers_202_with_its_location(client, redis_client):
    array = np.random.default_rng(0).random((2, 8, 8), dtype=np.float32)
    data, headers = binary_body({"inputs": [digits_input()]}, array)
    response = client.post(INFER, data=data, headers={**headers, "Prefer": "respond-async"})
    assert response.status_code == 202 and response.headers["Location"].startswith("/v1/jobs/")
    job_id = response.get_json()["id"]
    stored = np.load(io.BytesIO(redis_client.hget(keys.job(job_id), "input_npy")), allow_pickle=False)
    assert np.array_equal(stored, array) and waiting_count(redis_client, "digits") == 1


@pytest.mark.parametrize(("tensor", "words"), [
    (digits_input(shape=[2, 8, 9], parameters={"binary_data_size": 2 * 72 * 4}), "model expects [-1, 8, 8]"),
    (digits_input(datatype="INT64"), "model expects FP32"),
    (digits_input(parameters={"binary_data_size": 100}), "needs 512 bytes"),
    (digits_input(shape=[0, 8, 8], parameters={"binary_data_size": 0}), "batch dimension is 0"),
    (digits_input(shape=[10**9, 8, 8], parameters={"binary_data_size": 4}), "batch dimension"),
    (digits_input(shape="2,8,8"), "non-negative integers"),
    ({"name": "pixels", "shape": [2, 8, 8], "datatype": "FP32", "data": []}, "takes inputs ['image']"),
])
def test_a_tensor_that_does_not_fit_the_model_is_refused_before_it_is_read(client, redis_client, tensor, words):
    data, headers = binary_body({"inputs": [tensor]}, np.zeros((2, 8, 8), np.float32))
    assert_refused(client.post(INFER, data=data, headers=headers), 400, words)
    assert waiting_count(redis_client, "digits") == 0


def test_binary_tensors_without_the_header_length_are_refused(client):
    data, _ = binary_body({"inputs": [digits_input()]}, np.zeros((2, 8, 8), np.float32))
    assert_refused(client.post(INFER, data=data), 400, "not valid JSON")


@pytest.mark.parametrize("length", ["abc", "0", "999999"])
def test_a_header_length_that_is_not_a_length_of_this_body_is_refused(client, length):
    data, _ = binary_body({"inputs": [digits_input()]}, np.zeros((2, 8, 8), np.float32))
    assert_refused(client.post(INFER, data=data, headers={oip.HEADER_LENGTH: length}), 400,
                   oip.HEADER_LENGTH)


def test_trailing_bytes_beyond_the_declared_tensors_are_refused(client):
    data, headers = binary_body({"inputs": [digits_input()]}, np.zeros((2, 8, 8), np.float32))
    assert_refused(client.post(INFER, data=data + b"junk", headers=headers), 400, "inputs declare 512")


def test_json_data_of_the_wrong_size_or_kind_is_refused(client):
    tensor = {"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.0] * 63}
    assert_refused(client.post(INFER, json={"inputs": [tensor]}), 400, "needs 64")
    tensor["data"] = ["x"] * 64
    assert_refused(client.post(INFER, json={"inputs": [tensor]}), 400, "does not hold float32")


def test_an_unknown_output_name_is_refused(client):
    tensor = {"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}
    body = {"inputs": [tensor], "outputs": [{"name": "logits"}]}
    assert_refused(client.post(INFER, json=body), 400, "no output 'logits'")


def test_an_oversized_body_is_a_413_with_the_protocol_error(client):
    assert_refused(client.post(INFER, data=b"{" + b" " * (65 * 1024) + b"}"), 413, "limit")


def test_outputs_come_back_binary_when_asked_and_json_otherwise():
    request = oip.InferRequest("req-1", [], ["probabilities"], {"probabilities"})
    arrays = oip.output_arrays(orjson.dumps([[0.25] * 10, [0.5] * 10]), DIGITS)
    body, length = oip.encode_response(request, DIGITS, arrays, "job-1")
    header = orjson.loads(body[:length])
    assert header["id"] == "req-1" and header["model_version"] == "1"
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 80
    assert np.frombuffer(body[length:], "<f4").reshape(2, 10)[1, 0] == 0.5
    as_json, none = oip.encode_response(oip.InferRequest(None, [], ["probabilities"], set()), DIGITS, arrays, "j")
    assert none is None and orjson.loads(as_json)["outputs"][0]["data"][:2] == [0.25, 0.25]
