"""The backlog figure is exact while jobs are queued, claimed by a worker and running, across
model versions, checked against a ground truth built from the job records themselves."""
import io
import os
import signal
import socket
import time

import numpy as np
import redis
from prometheus_client.parser import text_string_to_metric_families

from shared import keys
from tests.fixtures.lanes import waiting_count
from tests.integration.helpers import wait_for

TERMINAL = {b"succeeded", b"failed", b"canceled"}


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array.astype(np.float32))
    return buffer.getvalue()


def freeze_while_running(client: redis.Redis, pid: int, submit_slow) -> list[str]:
    """Submit slow jobs and SIGSTOP the worker while one of them runs (a fast machine may need
    tries); returns every id submitted. The caller sends SIGCONT."""
    slow_ids: list[str] = []
    for _ in range(5):
        batch = submit_slow(4)
        slow_ids += batch
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                client.hget(keys.job(i), "status") == b"running" for i in batch):
            time.sleep(0.002)
        os.kill(pid, signal.SIGSTOP)
        if any(client.hget(keys.job(i), "status") == b"running" for i in batch):
            break
        os.kill(pid, signal.SIGCONT)
    return slow_ids


def test_backlog_counts_queued_claimed_and_running_jobs_exactly(stack, http):
    client = redis.Redis.from_url(stack.redis_url())
    heavy = npy(np.random.default_rng(1).normal(size=(256, 512)))

    def submit_slow(count: int) -> list[str]:
        return [http.post(f"{stack.url}/v1/models/slow/jobs", data=heavy,
                          headers={"Content-Type": "application/x-npy"}, timeout=30).json()["id"]
                for _ in range(count)]

    in_flight = keys.processing(f"worker-slow@{socket.gethostname()}", "slow")
    pid = stack.program_pid("worker-slow")
    slow_ids = freeze_while_running(client, pid, submit_slow)
    try:
        slow_ids += submit_slow(4)  # these stay queued in their lane
        statuses = [client.hget(keys.job(i), "status") for i in slow_ids]
        truth = sum(1 for s in statuses if s not in TERMINAL)
        claimed, queued = client.llen(in_flight), waiting_count(client, "slow")
        assert claimed > 0 and queued > 0 and b"running" in statuses
        info = http.get(f"{stack.url}/v1/models/slow", timeout=10).json()
        assert info["backlog"] == truth == claimed + queued
        assert queued < truth  # the lanes alone miss what the worker holds
        assert info["oldest_queued_age_s"] > 0
        families = {f.name: f for f in text_string_to_metric_families(http.get(f"{stack.url}/metrics", timeout=10).text)}
        [sample] = [s for s in families["inferq_backlog"].samples if s.labels["model"] == "slow"]
        assert sample.value == truth
    finally:
        os.kill(pid, signal.SIGCONT)
    for job_id in slow_ids:
        assert wait_for(http, stack.url, job_id, deadline_s=120)["status"] == "succeeded"
    assert http.get(f"{stack.url}/v1/models/slow", timeout=10).json()["backlog"] == 0


def test_backlog_adds_up_every_version_of_a_model(stack, http):
    client = redis.Redis.from_url(stack.redis_url())
    program = "worker-pair+legacy+scaled+rolling"
    stack.supervisorctl("stop", program)
    try:
        ids = [http.post(f"{stack.url}/v1/models/scaled/{path}", json={"instances": [[1.0]]}, timeout=30).json()["id"]
               for path in ("jobs", "jobs", "versions/1/jobs")]
        versions = sorted(client.hget(keys.job(i), "model_version") for i in ids)
        assert versions == [b"1", b"2", b"2"]
        assert http.get(f"{stack.url}/v1/models/scaled", timeout=10).json()["backlog"] == 3
    finally:
        stack.supervisorctl("start", program)
    for job_id in ids:
        assert wait_for(http, stack.url, job_id, deadline_s=60)["status"] == "succeeded"
