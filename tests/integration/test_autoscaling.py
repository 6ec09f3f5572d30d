"""The local autoscaler on a stack of its own: real supervisord, real worker processes, a real
Redis, and a second "host" in its own network namespace reaching Redis over a veth link.

Digits scales between 0 and 2 workers, one per 8 unfinished jobs, with a 1 s up and a 4 s down
cooldown, so a whole life cycle fits in a minute or two.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from tests.conftest import require_tool, server_binary
from tests.fixtures.repository import build_scaled, save
from tests.integration.helpers import wait_for
from tests.integration.stack import ROOT, copy_demo_model, free_port, start_stack, stop_stack

NETNS = "inferq-host2"
HOST_IP, REMOTE_IP = "10.213.0.1", "10.213.0.2"
INTERVAL_S, UP_COOLDOWN_S, DOWN_COOLDOWN_S = 0.5, 1, 4
SUPERVISOR_STARTSECS = 1
"""supervisord reports a started process RUNNING after this long."""
RESULTS = ROOT / "bench" / ".work" / "autoscaling.json"


def sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True)


def make_namespace() -> bool:
    """A network namespace joined to this one by a veth pair; False where that is not allowed."""
    sh("ip", "netns", "del", NETNS)
    steps = [("ip", "netns", "add", NETNS),
             ("ip", "link", "add", "inferq-veth0", "type", "veth", "peer", "name", "inferq-veth1"),
             ("ip", "link", "set", "inferq-veth1", "netns", NETNS),
             ("ip", "addr", "add", f"{HOST_IP}/30", "dev", "inferq-veth0"),
             ("ip", "link", "set", "inferq-veth0", "up"),
             ("ip", "netns", "exec", NETNS, "ip", "addr", "add", f"{REMOTE_IP}/30", "dev", "inferq-veth1"),
             ("ip", "netns", "exec", NETNS, "ip", "link", "set", "inferq-veth1", "up"),
             ("ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up")]
    for step in steps:
        if sh(*step).returncode != 0:
            remove_namespace()
            return False
    return True


def remove_namespace() -> None:
    sh("ip", "link", "del", "inferq-veth0")
    sh("ip", "netns", "del", NETNS)


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    """The stack, its Redis (also listening on the veth link when there is one), and whether
    the namespace exists."""
    base = tmp_path_factory.mktemp("autoscaling")
    netns = os.geteuid() == 0 and bool(require_tool("ip", "iproute2")) and make_namespace()
    port, password = free_port(), "autoscaling-test-password"
    binds = ["127.0.0.1"] + ([HOST_IP] if netns else [])
    server = subprocess.Popen([server_binary("redis-server"), "--port", str(port), "--bind", *binds, "--requirepass", password,
                               "--save", "", "--appendonly", "no", "--dir", str(base)], stdout=subprocess.DEVNULL)
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    models = base / "models"
    copy_demo_model(models)
    try:
        stack = start_stack(base, models, {"digits"}, {
            "INFERQ_REDIS_URL": url,
            "INFERQ_AUTOSCALE": "true",
            "INFERQ_AUTOSCALE_INTERVAL_S": str(INTERVAL_S),
            "INFERQ_AUTOSCALE_OVERRIDES": f"digits:min=0,max=2,target_backlog=8,"
                                          f"up_cooldown_s={UP_COOLDOWN_S},down_cooldown_s={DOWN_COOLDOWN_S}",
            "INFERQ_WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk=",
        })
    except Exception:
        server.terminate()
        remove_namespace()
        raise
    yield stack, redis.Redis.from_url(url), (f"redis://:{password}@{HOST_IP}:{port}/0" if netns else None)
    stop_stack(stack)
    server.terminate()
    server.wait(10)
    if netns:
        remove_namespace()


def running(stack) -> int:
    """Worker processes supervisord reports RUNNING for digits."""
    return sum(1 for line in stack.supervisorctl("status").splitlines()
               if line.startswith("worker-digits:") and " RUNNING " in line)


def alive(stack) -> int:
    """Worker processes that exist at all (a stopping worker may still take a job)."""
    return sum(1 for line in stack.supervisorctl("status").splitlines()
               if line.startswith("worker-digits:") and re.search(r" (RUNNING|STARTING|STOPPING|BACKOFF) ", line))


def until(check, timeout_s: float, what: str, step: float = 0.05) -> float:
    """Seconds until ``check()`` held; fails after ``timeout_s``."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - began


def decisions(stack) -> list[dict]:
    log = (stack.data_dir / "logs" / "autoscaler.log").read_text()
    return [json.loads(m) for m in re.findall(r"(\{\"event\": \"autoscale\".*\})", log)]


def record(**measured) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.update(measured)
    RESULTS.write_text(json.dumps(results, indent=2))


def submit(url: str, instances) -> str:
    response = requests.post(f"{url}/v1/models/digits/jobs", json={"instances": instances}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["id"]


DIGIT = [[float(c % 17) for c in range(8)] for _ in range(8)]


def test_an_idle_model_scales_down_to_zero_after_the_cooldown(scaled):
    stack, _, _ = scaled
    until(lambda: alive(stack) == 0, 60, "digits to scale to zero")
    reasons = [d["reason"] for d in decisions(stack)]
    assert "load once to publish the model's signature" in reasons and "backlog below target" in reasons


def test_a_job_at_zero_workers_wakes_one_at_once_and_completes(scaled):
    stack, _, _ = scaled
    until(lambda: alive(stack) == 0, 60, "zero workers")
    began = time.monotonic()
    job_id = submit(stack.url, [DIGIT])
    woke = until(lambda: running(stack) >= 1, 5, "a worker to be started", step=0.02)
    job = wait_for(requests.Session(), stack.url, job_id, deadline_s=90)
    assert job["status"] == "succeeded"
    first_job_s = time.monotonic() - began
    wake = [d for d in decisions(stack) if d["reason"] == "wake from zero (no cooldown)"]
    assert wake and wake[-1]["current"] == 0 and wake[-1]["target"] == 1
    record(wake_decision_s=round(woke, 2), first_job_from_zero_s=round(first_job_s, 2),
           worker_start_s=round(first_job_s - woke, 2))
    assert woke <= INTERVAL_S + SUPERVISOR_STARTSECS + 1.0  # one poll, RUNNING after startsecs, slack


def test_a_burst_scales_up_within_a_poll_plus_the_worker_start_time(scaled):
    stack, _, _ = scaled
    until(lambda: alive(stack) == 0, 60, "zero workers")
    session = requests.Session()
    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(submit, stack.url, [DIGIT] * 64) for _ in range(300)]
        started = until(lambda: running(stack) == 2, INTERVAL_S + 2 * SUPERVISOR_STARTSECS + 3,
                        "both workers to be started", step=0.02)
        ids = [future.result() for future in futures]
    serving = until(lambda: session.get(f"{stack.url}/v1/models/digits", timeout=5).json()["workers"] == 2,
                    60, "both workers' heartbeats", step=0.1) + started
    up = [d for d in decisions(stack) if d["target"] == 2 and d["current"] < 2]
    assert up and up[0]["backlog"] > 8
    record(burst_to_two_processes_s=round(started, 2), burst_to_two_workers_serving_s=round(serving, 2))
    for job_id in ids:
        assert wait_for(session, stack.url, job_id, deadline_s=120)["status"] == "succeeded"
    assert time.monotonic() - began < 180


def test_scale_in_under_load_loses_and_fails_no_job(scaled):
    stack, _, _ = scaled
    accepted, stop = [], threading.Event()

    def steady():
        session = requests.Session()
        while not stop.is_set():
            response = session.post(f"{stack.url}/v1/models/digits/jobs", json={"instances": [DIGIT]}, timeout=30)
            accepted.append(response.json()["id"])
            time.sleep(0.02)

    thread = threading.Thread(target=steady)
    thread.start()
    try:
        with ThreadPoolExecutor(8) as pool:  # a burst brings the second worker ...
            accepted += list(pool.map(lambda _: submit(stack.url, [DIGIT] * 64), range(300)))
        until(lambda: running(stack) == 2, 30, "two workers")
        # ... and once it has drained, the steady trickle needs only one: scale-in under load.
        until(lambda: running(stack) == 1, DOWN_COOLDOWN_S + 60, "a scale-in during the load")
        time.sleep(2)
    finally:
        stop.set()
        thread.join(30)
    session = requests.Session()
    statuses = [wait_for(session, stack.url, job_id, deadline_s=60)["status"] for job_id in accepted]
    assert len(accepted) > 50 and statuses.count("succeeded") == len(accepted)
    down = [d for d in decisions(stack) if d["reason"] == "backlog below target" and d["current"] == 2]
    assert down and down[-1]["target"] < 2  # to 1, or to 0 when the trickle leaves nothing waiting


def test_a_worker_on_a_second_host_takes_jobs_and_is_counted(scaled):
    stack, client, remote_url = scaled
    if remote_url is None:
        pytest.skip("network namespaces are not available here (needs root and iproute2)")
    env = {**os.environ, "INFERQ_REDIS_URL": remote_url, "INFERQ_MODELS_DIR": str(stack.models_dir),
           "INFERQ_WORKER_ID": "second-host", "INFERQ_AUTOSCALE": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    log = stack.data_dir / "logs" / "second-host.log"
    worker = subprocess.Popen(["ip", "netns", "exec", NETNS, sys.executable, "-m", "workers.inference", "digits"],
                              cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        until(lambda: client.zscore("inferq:workers:digits", "second-host") is not None, 90, "the second host's heartbeat")
        # It can only reach Redis over the link: loopback in its namespace has no Redis.
        probe = sh("ip", "netns", "exec", NETNS, sys.executable, "-c",
                   f"import socket; s = socket.socket(); s.settimeout(1); "
                   f"print(s.connect_ex(('127.0.0.1', {client.connection_pool.connection_kwargs['port']})))")
        assert probe.stdout.strip() != "0"
        served_by = set()
        session = requests.Session()
        for _ in range(40):
            ids = [submit(stack.url, [DIGIT] * 64) for _ in range(20)]
            for job_id in ids:
                wait_for(session, stack.url, job_id, deadline_s=60)
                served_by.add(client.hget(f"inferq:job:{job_id}", "worker"))
            if b"second-host" in served_by:
                break
        assert b"second-host" in served_by
        until(lambda: any(d.get("remote") == 1 for d in decisions(stack)), 30, "a decision counting the second host")
    finally:
        worker.terminate()
        worker.wait(60)


def test_a_model_dropped_in_under_a_new_name_gets_a_worker_and_is_adopted(scaled):
    stack, _, _ = scaled
    save(build_scaled(3), stack.models_dir / "late" / "1")

    def published():
        return requests.get(f"{stack.url}/v1/models/late", timeout=10).json().get("state") == "ready"

    until(published, 120, "the new model to be loaded and published", step=0.2)
    response = requests.post(f"{stack.url}/v1/models/late/jobs", json={"instances": [[2.0]]}, timeout=30)
    assert response.status_code == 202, response.text
    job = wait_for(requests.Session(), stack.url, response.json()["id"], deadline_s=60)
    assert (job["status"], job["predictions"]) == ("succeeded", [[6.0]])
    log = (stack.data_dir / "logs" / "autoscaler.log").read_text()
    assert '"event": "autoscaler-adopted", "programs": {"worker-late": ["late"]}' in log
    assert any(d["program"] == "worker-late" and d["target"] >= 1 for d in decisions(stack))
