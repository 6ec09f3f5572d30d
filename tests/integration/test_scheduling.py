"""Priority lanes, fair share between keys, queue deadlines, admission and queue position, on a
stack of their own (two API keys, a webhook receiver), with the digits worker frozen (SIGSTOP)
or stopped where a backlog must build."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from inferq_client import Client
from shared import keys
from tests.fixtures.lanes import waiting_count
from tests.integration.conftest import WEBHOOK_SECRET
from tests.integration.helpers import assert_problem, wait_for
from tests.integration.receiver import Receiver
from tests.integration.stack import copy_demo_model, start_stack, stop_stack

KEY_A, KEY_B = "scheduling-key-a", "scheduling-key-b"
BATCH = 32
"""The digits model's largest batch (its inferq.yaml)."""

ZERO = [[0.0] * 8] * 8


@pytest.fixture(scope="module")
def lanes_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("scheduling")
    copy_demo_model(base / "models")
    running = start_stack(base, base / "models", {"digits"}, {
        "INFERQ_API_KEYS": f"{KEY_A},{KEY_B}",
        "INFERQ_WEBHOOK_SECRET": WEBHOOK_SECRET, "INFERQ_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}, api_key=KEY_A)
    yield running
    assert stop_stack(running) == 0, running.logs()


@pytest.fixture
def receiver():
    hooks = Receiver()
    yield hooks
    hooks.close()


def session(key: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    return http


def post_job(http: requests.Session, url: str, **fields) -> requests.Response:
    return http.post(f"{url}/v1/models/digits/jobs", json={"instances": [ZERO], **fields}, timeout=30)


def submit_many(url: str, key: str, count: int, **fields) -> list[str]:
    """``count`` jobs from ``key``, in submission order (eight connections, each one's jobs in order)."""
    def chunk(start: int) -> list[str]:
        http = session(key)
        return [post_job(http, url, **fields).json()["id"] for _ in range(start, min(count, start + 250))]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [job_id for ids in pool.map(chunk, range(0, count, 250)) for job_id in ids]


@contextlib.contextmanager
def frozen_worker(stack):
    """The digits worker stopped in its tracks (a lost host, as far as its queue can tell)."""
    pid = stack.program_pid("worker-digits")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def started_at(client: redis.Redis, job_ids: list[str]) -> list[float]:
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(keys.job(job_id), "started_at")
    return [float(value) for value in pipe.execute()]


def wait_all(stack, job_ids: list[str], key: str) -> None:
    http = session(key)
    for job_id in job_ids:
        assert wait_for(http, stack.url, job_id, deadline_s=120)["status"] == "succeeded"


def model_calls(stack) -> float:
    """Instances the digits model has run, from the batch-size histogram on /metrics."""
    text = session(KEY_A).get(f"{stack.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "inferq_batch_size_sum" and sample.labels.get("model") == "digits":
                return sample.value
    return 0.0


def test_queued_positions_rise_within_a_lane_and_high_jobs_stand_ahead_of_low_ones(lanes_stack):
    http = session(KEY_A)
    with frozen_worker(lanes_stack):
        lows = [post_job(http, lanes_stack.url, priority="low").json() for _ in range(6)]
        highs = [post_job(http, lanes_stack.url, priority="high").json() for _ in range(2)]
        assert [job["queue"]["position"] for job in lows] == list(range(6))
        assert [job["queue"]["position"] for job in highs] == [0, 1]
        now = [http.get(f"{lanes_stack.url}/v1/jobs/{job['id']}", timeout=10).json() for job in lows]
        assert [job["queue"]["position"] for job in now] == list(range(2, 8))  # the high ones go first
        assert all(job["priority"] == "low" for job in now)
    wait_all(lanes_stack, [job["id"] for job in lows + highs], KEY_A)
    done = http.get(f"{lanes_stack.url}/v1/jobs/{lows[0]['id']}", timeout=10).json()
    assert "queue" not in done


def test_high_jobs_queued_behind_a_flood_of_low_ones_start_first(lanes_stack):
    client = redis.Redis.from_url(lanes_stack.redis_url())
    with frozen_worker(lanes_stack):
        lows = submit_many(lanes_stack.url, KEY_A, 200, priority="low")
        highs = submit_many(lanes_stack.url, KEY_A, 5, priority="high")
    wait_all(lanes_stack, highs + lows, KEY_A)
    last_high = max(started_at(client, highs))
    lows_first = sum(1 for start in started_at(client, lows) if start < last_high)
    assert lows_first <= 2 * BATCH, lows_first  # at most the batch or two in hand, or a low lane's turn


def test_another_keys_job_is_served_while_most_of_a_keys_flood_still_waits(lanes_stack):
    client = redis.Redis.from_url(lanes_stack.redis_url())
    with frozen_worker(lanes_stack):
        flood = submit_many(lanes_stack.url, KEY_A, 2000)
        single = post_job(session(KEY_B), lanes_stack.url).json()["id"]
    assert wait_for(session(KEY_B), lanes_stack.url, single, deadline_s=60)["status"] == "succeeded"
    b_started = started_at(client, [single])[0]
    wait_all(lanes_stack, flood, KEY_A)
    ahead = sum(1 for start in started_at(client, flood) if start < b_started)
    assert ahead < 0.1 * len(flood), ahead


def test_a_job_past_its_queue_deadline_expires_unrun_with_no_worker_and_its_webhook_says_so(lanes_stack, receiver):
    http = session(KEY_A)
    calls = model_calls(lanes_stack)
    lanes_stack.supervisorctl("stop", "worker-digits")  # scaled to zero: only the deadline sweep can act
    try:
        job = post_job(http, lanes_stack.url, max_queue_s=1, webhook={"url": receiver.url + "/hook"}).json()
        assert job["max_queue_s"] == 1 and job["queue"]["position"] == 0
        ended = wait_for(http, lanes_stack.url, job["id"], deadline_s=10)
        assert ended["status"] == "expired" and ended["started_at"] is None and "predictions" not in ended
        assert ended["error"]["type"] == "QueueTimeout"
        queued_s = (datetime.fromisoformat(ended["finished_at"]) - datetime.fromisoformat(ended["created_at"]))
        [hook] = receiver.wait_for(1, timeout_s=20, path="/hook")
        event = json.loads(hook.body)
        assert event["type"] == "job.completed" and event["data"]["status"] == "expired"
        assert event["data"]["id"] == job["id"]
    finally:
        lanes_stack.supervisorctl("start", "worker-digits")
    assert 1.0 <= queued_s.total_seconds() < 2.5  # ended within about a second of its deadline
    marker = post_job(http, lanes_stack.url).json()["id"]
    assert wait_for(http, lanes_stack.url, marker, deadline_s=120)["status"] == "succeeded"
    assert model_calls(lanes_stack) == calls + 1  # the marker ran; the expired job never reached the model


def test_admission_refuses_a_deadline_the_backlog_cannot_meet_and_stores_nothing(lanes_stack):
    http = session(KEY_A)
    wait_all(lanes_stack, submit_many(lanes_stack.url, KEY_A, 100), KEY_A)  # the busy rate is measured
    client = redis.Redis.from_url(lanes_stack.redis_url())
    with frozen_worker(lanes_stack):
        backlog = submit_many(lanes_stack.url, KEY_A, 3000)
        submitted = client.hget(keys.METRICS_SUBMITTED, "digits")
        refused = post_job(http, lanes_stack.url, max_queue_s=0.001)
        problem = assert_problem(refused, 503)
        assert int(refused.headers["Retry-After"]) >= 1 and problem["estimated_wait_s"] > 0.001
        assert client.hget(keys.METRICS_SUBMITTED, "digits") == submitted
        assert waiting_count(client, "digits") <= len(backlog)
    wait_all(lanes_stack, backlog, KEY_A)
    admitted = post_job(http, lanes_stack.url, max_queue_s=0.001)  # with no backlog, the same request
    assert admitted.status_code == 202, admitted.text


def test_the_low_lane_keeps_its_share_of_forward_passes_under_a_high_flood(lanes_stack):
    client = redis.Redis.from_url(lanes_stack.redis_url())
    with frozen_worker(lanes_stack):
        highs = submit_many(lanes_stack.url, KEY_A, 1600, priority="high")
        lows = submit_many(lanes_stack.url, KEY_B, 400, priority="low")
    wait_all(lanes_stack, highs, KEY_A)
    high_done = max(started_at(client, highs))
    lows_during = sum(1 for start in started_at(client, lows) if start <= high_done)
    share = lows_during / (lows_during + len(highs))
    assert 0.05 <= share <= 0.2, share  # INFERQ_LANE_SHARE is 0.1
    wait_all(lanes_stack, lows, KEY_B)


def test_the_sdk_and_cli_send_priority_and_deadline_and_show_the_place(lanes_stack, tmp_path):
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"instances": [ZERO]}))
    env = {**os.environ, "INFERQ_URL": lanes_stack.url, "INFERQ_API_KEY": KEY_A}
    with Client(lanes_stack.url, api_key=KEY_A) as sdk, frozen_worker(lanes_stack):
        low = sdk.submit("digits", [ZERO], priority="low", max_queue_s=600)
        high = sdk.submit("digits", [ZERO], priority="high")
        assert (low.priority, high.priority) == ("low", "high") and low.raw["max_queue_s"] == 600
        cli = subprocess.run([sys.executable, "-m", "inferq_client.cli", "submit", "digits", str(sample),
                              "--priority", "low", "--max-queue-s", "600"], env=env, capture_output=True, text=True,
                             timeout=60, check=True)
        shown = subprocess.run([sys.executable, "-m", "inferq_client.cli", "status", cli.stdout.strip()], env=env,
                               capture_output=True, text=True, timeout=60, check=True).stdout
        assert "queued position 2," in shown, shown  # behind the high job and the first low one
        assert sdk.get(low.id).queue["position"] == 1
    wait_all(lanes_stack, [low.id, high.id, cli.stdout.strip()], KEY_A)
