"""Property tests of the body parsers and validators: whatever bytes arrive, the answer is a
job or a problem+json 4xx, never an exception (a 500) and never a half-stored job."""
from __future__ import annotations

import dataclasses

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import InferqError
from shared.signatures import ModelCatalog
from shared.webhooks import parse_webhook
from tests.fixtures.hostile_bodies import multipart, npy_bytes, png, real_image
from tests.unit.conftest import DIGITS
from web import images
from web.body import count_json_values, parse_npy, prefer_wait, wait_seconds

IMAGE_DIGITS = dataclasses.replace(DIGITS, config={"preprocessing": {"image": {"size": [8, 8], "mode": "L"}}})
FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
REFUSALS = {400, 404, 413, 415, 422}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=60)
digit_like = st.lists(st.lists(st.floats(-1e40, 1e40) | st.integers(-5, 300), min_size=0, max_size=9),
                      min_size=0, max_size=9)
job_bodies = st.fixed_dictionaries({"instances": st.lists(digit_like, max_size=3)},
                                   optional={"webhook": json_values, "inputs": json_values, "extra": json_values})


def npy_mutations() -> st.SearchStrategy[bytes]:
    """Valid ``.npy`` bytes with a slice replaced, cut or extended: close enough to parse deep."""
    base = st.sampled_from([npy_bytes(np.zeros((1, 8, 8), np.float32)), npy_bytes(np.ones((2, 8, 8), np.uint8)),
                            npy_bytes(np.zeros((3, 3), np.float64))])

    def mutate(data: bytes, start: int, junk: bytes, cut: int) -> bytes:
        start %= len(data)
        return (data[:start] + junk + data[start + len(junk):])[: len(data) - cut % 8]

    return st.builds(mutate, base, st.integers(0, 400), st.binary(max_size=12), st.integers(0, 64))


def image_mutations() -> st.SearchStrategy[bytes]:
    base = st.sampled_from([real_image("PNG"), real_image("JPEG"), png(8, 8), real_image("PNG", (40, 30))])
    return st.builds(lambda data, at, junk: data[: at % len(data)] + junk + data[at % len(data) + len(junk):],
                     base, st.integers(0, 300), st.binary(min_size=1, max_size=8))


def assert_refusal_or_job(response, redis_client, jobs_before: int) -> None:
    jobs_after = len(redis_client.keys("inferq:job:*"))
    if response.status_code == 202:
        assert response.get_json()["id"] and jobs_after == jobs_before + 1
        return
    assert response.status_code in REFUSALS, (response.status_code, response.data[:300])
    assert response.content_type.startswith("application/problem+json")
    assert response.get_json()["status"] == response.status_code
    assert jobs_after == jobs_before, "a refused request stored a job"


@given(st.binary(max_size=2048) | npy_mutations())
@settings(max_examples=300, deadline=None)
def test_parse_npy_returns_an_array_or_refuses_with_a_400(data):
    try:
        array = parse_npy(data)
    except InferqError as refused:
        assert refused.status == 400
    else:
        assert isinstance(array, np.ndarray) and array.nbytes <= len(data)


def value_count(node) -> int:
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    return 1 + sum(value_count(child) for child in children)


def strings_hold_structure(node) -> bool:
    """Whether any key or string holds ``[``, ``{`` or ``,``, which the count takes for structure."""
    if isinstance(node, str):
        return any(ch in node for ch in "[{,")
    if isinstance(node, dict):
        return any(strings_hold_structure(k) or strings_hold_structure(v) for k, v in node.items())
    return isinstance(node, list) and any(strings_hold_structure(child) for child in node)


def empty_containers(node) -> int:
    children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else None
    if children is None:
        return 0
    return (not children) + sum(empty_containers(child) for child in children)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_the_value_count_bounds_every_json_document_from_above_and_tightly(value):
    data = orjson.dumps(value)
    with pytest.raises(InferqError):
        count_json_values(data, value_count(value) - 1)
    if not strings_hold_structure(value):  # then it overcounts by exactly one per empty container
        count_json_values(data, value_count(value) + empty_containers(value))


@given(st.one_of(st.binary(max_size=512).map(lambda b: b.decode("latin-1")), json_values.map(orjson.dumps).map(bytes.decode)))
@settings(max_examples=200, deadline=None)
def test_wait_parameters_are_a_capped_number_of_seconds_or_a_400(raw):
    for parse in (lambda: wait_seconds(raw, 30.0), lambda: prefer_wait(raw, 30.0)):
        try:
            seconds = parse()
        except InferqError as refused:
            assert refused.status == 400
        else:
            assert 0.0 <= seconds <= 30.0


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_any_webhook_value_is_a_spec_or_a_422(value):
    try:
        spec = parse_webhook(value)
    except InferqError as refused:
        assert refused.status == 422
    else:
        assert spec.url.startswith(("http://", "https://")) and spec.events


@given(st.lists(st.binary(max_size=64) | image_mutations(), min_size=1, max_size=4))
@settings(max_examples=200, deadline=None)
def test_any_image_upload_is_an_array_or_a_422_naming_the_part(parts):
    try:
        array = images.to_array([(f"p{i}", data) for i, data in enumerate(parts)], IMAGE_DIGITS, 100_000)
    except InferqError as refused:
        assert refused.status == 422 and "image " in refused.detail
    else:
        assert array.shape == (len(parts), 8, 8)


@given(st.binary(max_size=1024) | job_bodies.map(orjson.dumps) | json_values.map(orjson.dumps))
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_any_json_body_is_a_job_or_a_problem(client, redis_client, body):
    jobs_before = len(redis_client.keys("inferq:job:*"))
    response = client.post("/v1/models/digits/jobs", data=body, headers={"Content-Type": "application/json"})
    assert_refusal_or_job(response, redis_client, jobs_before)


@given(st.binary(max_size=1024) | npy_mutations())
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_any_npy_body_is_a_job_or_a_problem(client, redis_client, body):
    jobs_before = len(redis_client.keys("inferq:job:*"))
    response = client.post("/v1/models/digits/jobs", data=body, headers={"Content-Type": "application/x-npy"})
    assert_refusal_or_job(response, redis_client, jobs_before)


@given(st.lists(st.binary(max_size=64) | image_mutations(), max_size=3), st.binary(max_size=40))
@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURES)
def test_any_multipart_body_is_a_job_or_a_problem(client, redis_client, parts, tail):
    ModelCatalog(redis_client).publish(IMAGE_DIGITS)
    jobs_before = len(redis_client.keys("inferq:job:*"))
    body = multipart([(f"{i}.png", data) for i, data in enumerate(parts)])[: len(tail) * 50 or None] + tail
    response = client.post("/v1/models/digits/jobs", data=body,
                           headers={"Content-Type": "multipart/form-data; boundary=inferq-catalogue-boundary"})
    assert_refusal_or_job(response, redis_client, jobs_before)


@given(st.binary(max_size=1024) | json_values.map(orjson.dumps) | st.builds(
    lambda shape, datatype, data: orjson.dumps({"inputs": [{"name": "image", "shape": shape, "datatype": datatype,
                                                             "data": data}]}),
    st.lists(st.integers(-2, 10**12), max_size=4), st.sampled_from(["FP32", "INT8", "BYTES", "BOOL", "FP99"]),
    json_values))
@settings(max_examples=300, deadline=None, suppress_health_check=FIXTURES)
def test_any_v2_infer_body_is_a_job_or_a_problem(client, redis_client, body):
    jobs_before = len(redis_client.keys("inferq:job:*"))
    response = client.post("/v2/models/digits/infer", data=body,
                           headers={"Content-Type": "application/json", "Prefer": "respond-async"})
    assert_refusal_or_job(response, redis_client, jobs_before)


@given(st.dictionaries(st.sampled_from(["instances", "inputs", "webhook", "x"]), json_values, max_size=3))
@settings(max_examples=300, deadline=None)
def test_the_plain_rows_shortcut_only_skips_bodies_every_schema_accepts(body):
    from web.routes.tfserving import PREDICT_VALIDATOR
    from web.submission import SUBMIT_VALIDATOR, _plain_rows

    if _plain_rows(body):
        assert SUBMIT_VALIDATOR.is_valid(body) and PREDICT_VALIDATOR.is_valid(body)
