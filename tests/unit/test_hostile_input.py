"""Requests built to hurt: each answers a problem+json 4xx (or an honest 503), never a 500 or HTML."""
from __future__ import annotations

import pytest
import redis

from tests.unit.conftest import digit_image
from web import gunicorn_errors


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/problem+json"
    return response.get_json()


@pytest.mark.parametrize("path", ["/v1/jobs/abc:deliveries", "/v1/jobs/" + "a" * 5000, "/v1/jobs/%FF%FE",
                                  "/v1/jobs/inferq:models", "/v1/jobs/00000000-0000-0000-0000-000000000000"])
def test_anything_that_is_not_a_job_id_is_a_404_without_a_redis_read(client, path, monkeypatch):
    from web.services import services

    def no_read(job_id):
        raise AssertionError(f"looked up {job_id!r}")

    with client.application.app_context():
        monkeypatch.setattr(services().store, "get_public", no_read)
    assert "not a job id" in assert_problem(client.get(path), 404)["detail"]
    assert assert_problem(client.delete(path), 404)


def test_a_full_redis_answers_503_with_retry_after_and_stores_nothing(client, monkeypatch):
    from web.services import services

    def refuse(job):
        raise redis.exceptions.ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    with client.application.app_context():
        monkeypatch.setattr(services().queue, "submit", refuse)
    response = client.post("/v1/models/digits/jobs", json={"instances": [digit_image()]})
    assert "full" in assert_problem(response, 503)["detail"] and response.headers["Retry-After"] == "30"


def test_gunicorns_own_error_pages_are_problem_json():
    raw = gunicorn_errors.problem_bytes(431, "Request Header Fields Too Large", "Error parsing headers: 'too many'")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 431 ") and b"Content-Type: application/problem+json" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert b'"status":431' in body and b"<html" not in raw


def test_gunicorns_501_for_an_unknown_transfer_coding_is_answered_400():
    import socket

    ours, theirs = socket.socketpair()
    with ours, theirs:
        gunicorn_errors.write_problem(ours, 501, "Not Implemented", "Unsupported transfer coding: 'gzip'")
        sent = theirs.recv(65536)
    assert sent.startswith(b"HTTP/1.1 400 ") and b'"status":400' in sent and b"gzip" in sent


def test_a_big_body_waits_for_a_turn_and_is_answered_503_when_none_comes(monkeypatch):
    from shared.errors import Unavailable
    from web import body_turns

    monkeypatch.setattr(body_turns, "TURN_WAIT_S", 0.05)
    turns = body_turns.BodyTurns(1)
    with turns.turn(None):  # unknown size counts as big
        with turns.turn(100):  # a small body never waits
            pass
        with pytest.raises(Unavailable) as refused, turns.turn(body_turns.HEAVY_BODY_BYTES + 1):
            pass
    assert refused.value.retry_after == 1
    with turns.turn(body_turns.HEAVY_BODY_BYTES + 1):  # the turn was given back
        pass


def test_a_json_body_with_more_values_than_the_budget_is_413_before_parsing(client, monkeypatch):
    import types

    import orjson

    from web import body

    parsed = []
    monkeypatch.setattr(body, "orjson", types.SimpleNamespace(
        loads=lambda data: parsed.append(data), JSONDecodeError=orjson.JSONDecodeError))
    response = client.post("/v1/models/digits/jobs", data=b'{"instances": [' + b"[]," * 13_000 + b"[]]}",
                           headers={"Content-Type": "application/json"})
    assert "JSON values" in assert_problem(response, 413)["detail"] and parsed == []


def npy_header(shape: str, dtype: str = "<f4") -> bytes:
    """A version 1.0 .npy header claiming ``shape``, with no data behind it."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (63 - len(text) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()


def npy_bytes(array) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npz_bytes() -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, a=np.zeros((1, 8, 8)))
    return buffer.getvalue()


@pytest.mark.parametrize(("body", "words"), [
    (npy_header("(1000000000, 8, 8)"), "promises"),
    (npy_header("(1000000000000000000000000000000, 8, 8)"), "promises"),
    (npy_header("(-1, 8, 8)"), "promises"),
    (npy_header("(1,)", "|O"), "dtype object"),
    (b"\x93NUMPY\x02\x00" + (10**6).to_bytes(4, "little"), "not a single .npy array"),
    (npz_bytes(), "not a single .npy array"),
], ids=["billion-rows", "31-digit-dimension", "negative-dimension", "object-dtype", "huge-header", "npz-archive"])
def test_an_npy_header_is_checked_before_anything_is_allocated(client, body, words):
    response = client.post("/v1/models/digits/jobs", data=body, headers={"Content-Type": "application/x-npy"})
    assert words in assert_problem(response, 400)["detail"]


def test_a_valid_npy_array_followed_by_junk_is_refused_not_stored(client, redis_client):
    import numpy as np

    body = npy_bytes(np.zeros((1, 8, 8), np.float32)) + b"\0" * 4096
    response = client.post("/v1/models/digits/jobs", data=body, headers={"Content-Type": "application/x-npy"})
    assert "the body carries" in assert_problem(response, 400)["detail"]
    assert redis_client.keys("inferq:job:*") == []
