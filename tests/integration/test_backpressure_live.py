"""The queue cap and the per-key rate limit under load, on a real Redis server and real
gunicorn (no worker: jobs stay queued, which is what fills the cap)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from shared.signatures import ModelCatalog, ModelSignature, TensorSpec
from tests.conftest import server_binary
from tests.fixtures.lanes import waiting_count
from tests.integration.helpers import wait_until
from tests.integration.stack import ROOT, free_port

SMALL = ModelSignature("small", 1, (TensorSpec("x", (None, 2), "float32"),), (TensorSpec("y", (None, 1), "float32"),))


@pytest.fixture
def api(tmp_path, request):
    """redis-server and gunicorn with a queue cap (100 unless the test asks for another) and
    40 submissions/s per key."""
    cap = getattr(request, "param", 100)
    redis_port, web_port = free_port(), free_port()
    server = subprocess.Popen([server_binary("redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=redis_port)
    wait_until(lambda: _answers(client.ping, redis.ConnectionError), 10, "redis-server", step_s=0.05)
    ModelCatalog(client).publish(SMALL)
    env = {**os.environ, "INFERQ_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "INFERQ_WEB_WORKERS": "2",
           "INFERQ_WEB_BIND": f"127.0.0.1:{web_port}", "INFERQ_MAX_QUEUED_PER_MODEL": str(cap),
           "INFERQ_RATE_LIMIT_PER_KEY": "40", "INFERQ_RATE_LIMIT_BURST": "40",
           "INFERQ_API_KEYS": "key-one,key-two"}
    web = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "web/gunicorn.conf.py",
                            "web.wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{web_port}"
    wait_until(lambda: _answers(lambda: requests.get(url + "/healthz", timeout=1), requests.RequestException),
               30, "gunicorn")
    yield url, client
    web.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: the test is over
    try:
        web.wait(30)
    except subprocess.TimeoutExpired:
        web.kill()
        web.wait(10)
    server.terminate()
    server.wait(10)


def _answers(call, refused: type[Exception]) -> bool:
    """True once ``call()`` gets an answer rather than ``refused`` (the server is up)."""
    try:
        call()
        return True
    except refused:
        return False


def hammer(url: str, key: str, seconds: float, threads: int = 8) -> list[requests.Response]:
    """Submit as fast as ``threads`` clients can for ``seconds``; every answer."""
    end = time.monotonic() + seconds

    def client(_):
        session, answers = requests.Session(), []
        while time.monotonic() < end:
            answers.append(session.post(f"{url}/v1/models/small/jobs", json={"instances": [[1, 2]]},
                                        headers={"Authorization": f"Bearer {key}"}, timeout=10))
        return answers

    with ThreadPoolExecutor(threads) as pool:
        return [answer for answers in pool.map(client, range(threads)) for answer in answers]


@pytest.mark.parametrize("api", [100_000], indirect=True)  # no queue cap in the way
def test_a_key_over_its_rate_gets_429_with_retry_after_and_another_key_is_unaffected(api):
    url, _ = api
    began = time.monotonic()
    answers = hammer(url, "key-one", 1.0)
    wall = time.monotonic() - began  # the last requests end after the second is up
    accepted = [a for a in answers if a.status_code == 202]
    limited = [a for a in answers if a.status_code == 429]
    assert len(accepted) + len(limited) == len(answers), {a.status_code for a in answers}
    assert 40 <= len(accepted) <= 40 + 40 * wall + 1  # the burst, then 40 per second
    assert limited and all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    assert limited[0].headers["Content-Type"].startswith("application/problem+json")
    other = requests.post(f"{url}/v1/models/small/jobs", json={"instances": [[1, 2]]},
                          headers={"Authorization": "Bearer key-two"}, timeout=10)
    assert other.status_code == 202


def test_a_full_queue_answers_503_with_retry_after_and_stores_nothing_more(api):
    url, client = api
    answers = hammer(url, "key-one", 1.5) + hammer(url, "key-two", 3.0)
    full = [a for a in answers if a.status_code == 503]
    accepted = [a for a in answers if a.status_code == 202]
    assert len(accepted) == 100, {a.status_code for a in answers}
    assert full and all(int(a.headers["Retry-After"]) >= 1 for a in full)
    assert full[0].json()["backlog"] == 100
    assert waiting_count(client, "small") == 100
    assert ModelCatalog(client).pending("small") == {1: 100}
