"""Redis faults on a primary with two replicas and three Sentinels, under a steady submit load,
each checked with the no-loss oracle (harness.py): every job that got a 202 ends ``succeeded``,
started at most once more than the faults injected, with one ``completed`` webhook id.

The stack waits for one replica's confirmation before each 202 (``INFERQ_REDIS_MIN_REPLICAS=1``,
which ``make run`` sets with replicas). Sentinel calls a primary down after 3 s of silence.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest
import requests

from tests.faults.harness import Load, Report, assert_no_5xx, digit, record, slow
from tests.integration.helpers import wait_until

FROZEN_S = 40
"""How long a lost host stays lost: far longer than Sentinel takes to call it down."""

RECOVERY_LIMIT_S = 30
"""Submits must be accepted again within this long of the first one refused."""


@pytest.fixture(autouse=True)
def healthy(redis_set, failover_stack):
    """Every fault starts from three running nodes, the primary with both replicas in sync."""
    redis_set.healed()
    wait_until(lambda: requests.get(failover_stack.url + "/readyz", timeout=5).status_code == 200, 60,
               "the stack to be ready")
    yield


class ParkedPolls:
    """Long-polls parked on slow jobs before a fault; each remembers the answer it got."""

    def __init__(self, url: str, job_ids: list[str], wait_s: float = 30):
        self.answers: dict[str, tuple[int, str]] = {}
        self.threads = [threading.Thread(target=self._poll, args=(url, job_id, wait_s), daemon=True)
                        for job_id in job_ids]
        for thread in self.threads:
            thread.start()

    def _poll(self, url: str, job_id: str, wait_s: float) -> None:
        try:
            response = requests.get(f"{url}/v1/jobs/{job_id}", params={"wait": wait_s}, timeout=wait_s + 30)
            self.answers[job_id] = (response.status_code, response.json().get("status", ""))
        except requests.RequestException as exc:
            self.answers[job_id] = (0, type(exc).__name__)

    def join(self) -> dict[str, tuple[int, str]]:
        for thread in self.threads:
            thread.join(90)
        return self.answers


def submit_once(url: str, headers: dict) -> requests.Response:
    return requests.post(f"{url}/v1/models/digits/jobs", json={"instances": digit(0)}, headers=headers, timeout=30)


def steady_load(stack, receiver) -> Load:
    load = Load(stack.url, receiver.url, concurrency=4)
    load.start_steady("digits", digit, pause_s=0.02)
    time.sleep(2)
    return load


def finish(report: Report, load: Load, oracle, since: float, extra_ids: list[str] = ()) -> None:
    """Stop the load, measure the outage, check the oracle, record the line."""
    time.sleep(3)  # accepted again: let the load show it
    load.stop()
    report.unavailable_s = load.unavailability(since)
    report.refused = load.refused()
    oracle.check(report, [*load.accepted, *extra_ids], faults=1, deadline_s=120)
    record(report)
    assert_no_5xx(load, allowed={503})
    assert report.unavailable_s <= RECOVERY_LIMIT_S, f"submits were refused for {report.unavailable_s} s"


def test_a_primary_frozen_for_forty_seconds_fails_over_and_loses_no_accepted_job(
        failover_stack, receiver, redis_set, failover_oracle):
    """A frozen process cannot be restarted by its supervisor: this is a lost host."""
    report = Report("12. freeze the Redis primary 40 s (a lost host: Sentinel fails over)")
    old = redis_set.healed()
    slow_jobs = Load(failover_stack.url, receiver.url).burst("chaos", slow(2.0), 2)
    parked = ParkedPolls(failover_stack.url, slow_jobs)
    load = steady_load(failover_stack, receiver)
    report.in_flight_at_fault = failover_oracle.in_flight()
    frozen_at = time.time()
    pid = redis_set.freeze(old)
    try:
        new = redis_set.promoted_over(old, 30)
        answers = parked.join()
        time.sleep(max(0.0, FROZEN_S - (time.time() - frozen_at)))
    finally:
        redis_set.resume(pid)
    wait_until(lambda: redis_set.follows(old, new), 60, f"{old} to rejoin as a replica of {new}", step_s=0.5)
    assert answers == dict.fromkeys(slow_jobs, (200, "succeeded")), answers
    finish(report, load, failover_oracle, frozen_at, slow_jobs)


@pytest.mark.parametrize("held_back", [False, True], ids=["restarted at once", "restart held back"])
def test_sigkill_of_the_primary_loses_no_accepted_job(failover_stack, receiver, redis_set, failover_oracle,
                                                      held_back):
    """Restarted at once, the primary is back (from its AOF) before Sentinel calls it down;
    held back, Sentinel fails over, and the old primary rejoins as a replica when it starts."""
    report = Report("12c. SIGKILL the Redis primary, its restart held back 40 s" if held_back
                    else "12b. SIGKILL the Redis primary (supervisord restarts it)")
    old = redis_set.healed()
    load = steady_load(failover_stack, receiver)
    report.in_flight_at_fault = failover_oracle.in_flight()
    killed_at = time.time()
    if held_back:
        stopping = redis_set.kill_held_back(old)
        new = redis_set.promoted_over(old, 30)
        stopping.join(60)
        time.sleep(max(0.0, FROZEN_S - (time.time() - killed_at)))
        redis_set.start(old)
        wait_until(lambda: redis_set.follows(old, new), 60, f"{old} to rejoin as a replica of {new}", step_s=0.5)
    else:
        os.kill(redis_set.pid(old), signal.SIGKILL)
        wait_until(lambda: redis_set.role(old)[0] != "unreachable" or None, 30, f"{old} to be restarted")
    finish(report, load, failover_oracle, killed_at)


def test_a_batch_in_flight_when_the_primary_dies_lands_once(failover_stack, receiver, redis_set,
                                                             failover_oracle):
    report = Report("13. lose the Redis primary while a batch runs on a worker")
    old = redis_set.healed()
    load = Load(failover_stack.url, receiver.url)
    ids = load.burst("chaos", slow(1.5), 3)  # one batch of 4.5 s, inside the chaos model's 6 s limit
    holding = redis_set.primary_client()
    wait_until(lambda: sum(holding.llen(key) for key in holding.scan_iter("inferq:processing:chaos:*")), 20,
               "a worker to claim the batch", step_s=0.05)
    report.in_flight_at_fault = failover_oracle.in_flight()
    killed_at = time.time()
    stopping = redis_set.kill_held_back(old)
    new = redis_set.promoted_over(old, 30)
    stopping.join(60)
    final = failover_oracle.check(report, ids, faults=1, deadline_s=90)
    report.recovery_s = round(time.time() - killed_at, 1)
    record(report)
    assert all(job["predictions"][0][1] == 1.5 for job in final.values())
    redis_set.start(old)
    wait_until(lambda: redis_set.follows(old, new), 60, f"{old} to rejoin as a replica of {new}", step_s=0.5)
    assert_no_5xx(load)


def test_a_primary_cut_off_from_its_replicas_accepts_nothing_and_loses_nothing(
        failover_stack, receiver, redis_set, failover_oracle):
    report = Report("14. freeze both replicas 15 s (MIN_REPLICAS=1: submits refused)")
    primary = redis_set.healed()
    load = steady_load(failover_stack, receiver)
    report.in_flight_at_fault = failover_oracle.in_flight()
    cut_at = time.time()
    pids = [redis_set.freeze(name) for name in redis_set.replicas_of(primary)]
    key = {"Idempotency-Key": f"partition-{uuid.uuid4()}"}
    try:
        time.sleep(2)
        refused = submit_once(failover_stack.url, key)
        time.sleep(13)
    finally:
        for pid in pids:
            redis_set.resume(pid)
    healed_at = time.time()
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0, refused.text
    assert refused.json()["replicas_confirmed"] == 0
    # The refused job was withdrawn: the same key now makes one job, and a replay returns it.
    first = wait_until(lambda: (lambda r: r if r.status_code == 202 else None)(submit_once(failover_stack.url, key)),
                       30, "the keyed submit to be accepted", step_s=0.5)
    replay = submit_once(failover_stack.url, key)
    # 202 while the job is unfinished, 200 once it ended: either way the same job, replayed.
    assert replay.status_code in (200, 202) and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]
    # A submit sent once the replicas were frozen cannot be confirmed; allow those already in WAIT.
    during = [status for sent, status in list(load.timeline) if cut_at + 1.0 <= sent <= healed_at - 1.0]
    assert during and 202 not in during and set(during) == {503}, sorted(set(during), key=str)
    wait_until(lambda: redis_set.primary() == primary, 5, "the primary to stay primary")
    finish(report, load, failover_oracle, cut_at)
    assert failover_oracle.redis.zcard("inferq:queue-held") == 0, "jobs left held after the partition"
    keyed = failover_oracle.drain([first.json()["id"]], 30)
    assert [job["status"] for job in keyed.values()] == ["succeeded"]


def test_an_old_primary_that_comes_back_serves_nothing_the_new_one_lacks(
        failover_stack, receiver, redis_set, failover_oracle):
    """Lose the primary, then give its disk a write the others never saw (a result it took just
    before it died, never replicated), and bring it back: it must rejoin as a replica and drop
    that write, which must never be served."""
    report = Report("15. restart the old primary after a failover (its disk holds a write the others lack)")
    old = redis_set.healed()
    redis_set.kill_held_back(old).join(60)
    lost_at = time.time()
    new = redis_set.promoted_over(old, 60)
    ghost = str(uuid.uuid4())
    redis_set.append_to_aof(old, ["HSET", f"inferq:job:{ghost}", "id", ghost, "model", "digits",
                                  "model_version", "1", "status", "succeeded", "created_at", repr(time.time()),
                                  "predictions", "[[1.0]]"])
    load = steady_load(failover_stack, receiver)
    assert requests.get(f"{failover_stack.url}/v1/jobs/{ghost}", timeout=10).status_code == 404
    redis_set.start(old)
    wait_until(lambda: redis_set.follows(old, new), 60, f"{old} to rejoin as a replica of {new}", step_s=0.5)
    wait_until(lambda: redis_set.node(old).info("replication").get("master_link_status") == "up", 60,
               f"{old} to finish its sync")
    assert not redis_set.node(old).exists(f"inferq:job:{ghost}"), "the rejoined node kept a write the primary lacks"
    assert requests.get(f"{failover_stack.url}/v1/jobs/{ghost}", timeout=10).status_code == 404
    finish(report, load, failover_oracle, lost_at)
