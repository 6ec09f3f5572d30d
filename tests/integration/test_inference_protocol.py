"""The Open Inference Protocol (v2) through nginx on the real stack, driven by the unmodified
tritonclient from PyPI, and by raw HTTP for every way a request can be refused."""
from __future__ import annotations

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.integration.helpers import assert_problem, wait_for
from tests.integration.stack import ROOT

IMAGES = np.random.default_rng(7).uniform(0, 16, size=(5, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def client(stack):
    return triton.InferenceServerClient(url=stack.url.removeprefix("http://"), network_timeout=60)


@pytest.fixture(scope="module")
def expected():
    """What the demo model itself says about IMAGES, loaded here as Keras loads it."""
    import keras

    return keras.saving.load_model(ROOT / "models" / "digits" / "1" / "model.keras", compile=False).predict(
        IMAGES, verbose=0)


def image_input(binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("image", list(IMAGES.shape), "FP32")
    tensor.set_data_from_numpy(IMAGES, binary_data=binary)
    return tensor


def test_health_and_metadata_read_as_the_client_expects(client):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("digits")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("digits")
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 8, 8]}]
    assert metadata["outputs"][0]["datatype"] == "FP32" and "1" in metadata["versions"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_returns_the_models_own_probabilities(client, expected, binary):
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer("digits", [image_input(binary)], outputs=outputs, request_id="r-1")
    assert result.get_response()["id"] == "r-1" and result.get_response()["model_name"] == "digits"
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5, atol=1e-6)


def test_infer_with_a_pinned_version_and_no_outputs_named_returns_all_as_binary(client, expected):
    result = client.infer("digits", [image_input(True)], model_version="1")
    assert result.get_response()["model_version"] == "1"
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5, atol=1e-6)


def test_an_infer_call_is_a_recorded_job_with_its_timings(client, stack, http):
    result = client.infer("digits", [image_input(True)])
    job_id = result.get_response()["parameters"]["inferq_job_id"]
    job = http.get(f"{stack.url}/v1/jobs/{job_id}", timeout=10).json()
    assert job["status"] == "succeeded" and job["model_version"] == "1" and job["timings"]["batch_size"] >= 1


def test_an_unknown_model_raises_the_clients_own_exception_with_the_servers_message(client):
    with pytest.raises(InferenceServerException) as raised:
        client.get_model_metadata("no-such-model")
    assert "'no-such-model' is not served here" in raised.value.message()
    with pytest.raises(InferenceServerException) as raised:
        client.infer("no-such-model", [image_input(True)])
    assert "not served" in raised.value.message()


def test_respond_async_answers_202_with_the_jobs_location(stack, http):
    body = {"inputs": [{"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "data": IMAGES[0].ravel().tolist()}]}
    response = http.post(f"{stack.url}/v2/models/digits/infer", json=body, headers={"Prefer": "respond-async"},
                         timeout=30)
    assert response.status_code == 202
    assert wait_for(http, stack.url, response.headers["Location"].rsplit("/", 1)[-1])["status"] == "succeeded"


def binary_request(tensor: dict, payload: bytes, with_length: bool = True) -> tuple[bytes, dict]:
    header = orjson.dumps({"inputs": [tensor]})
    return header + payload, ({"Inference-Header-Content-Length": str(len(header))} if with_length else {})


GOOD = {"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "parameters": {"binary_data_size": 256}}


@pytest.mark.parametrize(("tensor", "payload", "with_length", "words"), [
    ({**GOOD, "shape": [1, 8, 9], "parameters": {"binary_data_size": 288}}, bytes(288), True, "expects [-1, 8, 8]"),
    ({**GOOD, "datatype": "FP64", "parameters": {"binary_data_size": 512}}, bytes(512), True, "expects FP32"),
    (GOOD, bytes(255), True, "only 255 remain"),
    ({**GOOD, "parameters": {"binary_data_size": 255}}, bytes(255), True, "needs 256 bytes"),
    (GOOD, bytes(256), False, "not valid JSON"),
], ids=["shape", "datatype", "short-binary", "size-mismatch", "no-header-length"])
def test_a_refused_tensor_is_a_400_with_the_protocol_error(stack, http, tensor, payload, with_length, words):
    data, headers = binary_request(tensor, payload, with_length)
    response = http.post(f"{stack.url}/v2/models/digits/infer", data=data, headers=headers, timeout=30)
    problem = assert_problem(response, 400)
    assert words in problem["error"]


def test_an_unknown_output_name_is_a_400(stack, http):
    body = {"inputs": [{"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}],
            "outputs": [{"name": "logits"}]}
    problem = assert_problem(http.post(f"{stack.url}/v2/models/digits/infer", json=body, timeout=30), 400)
    assert "no output 'logits'" in problem["error"]


def test_an_oversized_body_is_a_413_from_nginx_with_the_protocol_error(stack, http):
    response = http.post(f"{stack.url}/v2/models/digits/infer", data=bytes(2 * 1024 * 1024), timeout=30)
    assert "limit" in assert_problem(response, 413)["error"]


def test_a_two_input_two_output_model_takes_and_returns_named_tensors(client):
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    b = np.array([[10, 20], [30, 40]], dtype=np.float32)
    inputs = [triton.InferInput("a", [2, 3], "FP32"), triton.InferInput("b", [2, 2], "FP32")]
    inputs[0].set_data_from_numpy(a, binary_data=True)
    inputs[1].set_data_from_numpy(b, binary_data=False)
    outputs = [triton.InferRequestedOutput("output_0", binary_data=True), triton.InferRequestedOutput("output_1")]
    result = client.infer("pair", inputs, outputs=outputs)
    np.testing.assert_allclose(result.as_numpy("output_0"), [[36.0], [85.0]])
    np.testing.assert_allclose(result.as_numpy("output_1"), [[1.0], [4.0]])


def test_the_platform_names_the_format_the_worker_loaded(client):
    assert client.get_model_metadata("pair")["platform"] == "tensorflow_savedmodel"
    assert client.get_model_metadata("digits")["platform"] == "tensorflow_keras"
