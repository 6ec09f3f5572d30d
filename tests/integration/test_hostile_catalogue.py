"""Every case of the hostile-input catalogue, sent as raw bytes to nginx in front of the real
stack: the exact status, a problem+json body (never HTML, never a 5xx), no job stored for a
refused request, and a healthy stack with the same gunicorn workers afterwards."""
from __future__ import annotations

import http.client
import socket
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
import redis

from tests.integration.hostile_catalogue import Case, catalogue

CASES = catalogue()


def send(url: str, case: Case, timeout_s: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection; the status, headers and body nginx answered."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as sock:
        try:
            sock.sendall(case.wire(parts.netloc))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before a large body is all sent
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def web_workers(stack) -> set[int]:
    """The gunicorn worker pids under the master supervisord runs."""
    master = stack.program_pid("web")
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def stored_jobs(client: redis.Redis) -> int:
    return sum(1 for _ in client.scan_iter(match="inferq:job:*", count=1000))


@pytest.fixture(scope="module")
def redis_client(stack):
    client = redis.Redis.from_url(stack.redis_url())
    yield client
    client.close()


@pytest.fixture(scope="module")
def workers_before(stack):
    return web_workers(stack)


def test_the_catalogue_covers_every_input_class():
    classes = {case.name.split("-")[0] for case in CASES}
    assert {"json", "webhook", "npy", "image", "header", "path", "query", "tfs", "v2"} <= classes
    assert len(CASES) >= 100 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_request_gets_its_exact_4xx_as_problem_json(stack, http, redis_client, workers_before, case):
    jobs_before = stored_jobs(redis_client)
    status, headers, body = send(stack.url, case)
    assert status == case.status, (status, body[:300])
    if status >= 400:
        assert headers["content-type"].startswith("application/problem+json"), headers
        problem = orjson.loads(body)
        assert problem["status"] == status and problem["title"] and problem["detail"], problem
        assert b"<html" not in body.lower()
        assert stored_jobs(redis_client) == jobs_before, "a refused request stored a job"
    else:
        assert orjson.loads(body)["id"]
    assert http.get(stack.url + "/healthz", timeout=5).status_code == 200


def test_no_web_worker_died_during_the_catalogue(stack, workers_before):
    """Runs after every case (pytest keeps file order): the same gunicorn workers still serve."""
    assert web_workers(stack) == workers_before
