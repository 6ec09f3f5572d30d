"""The autoscaling policy, its cooldowns, and the loop (with a stand-in process pool)."""
import json
import logging

import pytest

from launcher.autoscaler import Autoscaler, Pacer, Policy, parse_overrides, policies
from shared import keys
from shared.job_store import JobStore
from shared.jobs import Job
from shared.settings import Settings
from shared.signatures import ModelCatalog
from tests.unit.conftest import DIGITS, submit_job


@pytest.mark.parametrize("backlog, expected", [(0, 1), (1, 1), (32, 1), (33, 2), (64, 2), (1000, 4)])
def test_desired_is_the_backlog_over_the_target_clamped(backlog, expected):
    assert Policy(min=1, max=4, target_backlog=32).desired(backlog) == expected


def test_scale_up_waits_for_its_cooldown_except_from_zero():
    pacer = Pacer(Policy(min=0, max=4, target_backlog=10, up_cooldown_s=5, down_cooldown_s=60))
    assert pacer.decide("p", backlog=5, current=0, now=100.0).target == 1  # wake at once
    held = pacer.decide("p", backlog=40, current=1, now=101.0)
    assert (held.target, held.desired) == (1, 4) and "up cooldown" in held.reason
    assert pacer.decide("p", backlog=40, current=1, now=105.5).target == 4


def test_scale_down_waits_for_the_down_cooldown_then_reaches_min_or_zero():
    pacer = Pacer(Policy(min=0, max=4, target_backlog=10, up_cooldown_s=5, down_cooldown_s=60))
    pacer.last_change = 100.0
    assert pacer.decide("p", backlog=0, current=3, now=100.0).target == 3
    assert pacer.decide("p", backlog=0, current=3, now=130.0).target == 3
    assert pacer.decide("p", backlog=0, current=3, now=161.0).target == 0


def test_overrides_apply_per_model():
    settings = Settings(autoscale_min=1, autoscale_max=2, autoscale_overrides="digits:min=0,max=5;other:target_backlog=4")
    chosen = policies(settings, {"worker-digits": ["digits"], "worker-x": ["x"]})
    assert (chosen["worker-digits"].min, chosen["worker-digits"].max) == (0, 5)
    assert chosen["worker-x"] == Policy(1, 2, 32, 5.0, 60.0)
    assert parse_overrides("a:up_cooldown_s=1.5") == {"a": {"up_cooldown_s": 1.5}}
    with pytest.raises(ValueError, match="unknown setting"):
        parse_overrides("a:colour=red")
    with pytest.raises(ValueError, match="min <= max"):
        policies(Settings(autoscale_min=3, autoscale_max=2), {"worker-a": ["a"]})


class FakePool:
    def __init__(self, running):
        self.count = dict(running)
        self.calls = []

    def running(self, program):
        return self.count[program]

    def scale(self, program, target):
        self.calls.append((program, target))
        self.count[program] = target

    def worker_programs(self):
        return set(self.count)


def test_a_round_scales_each_program_and_logs_one_json_line_per_decision(redis_client, caplog):
    ModelCatalog(redis_client).publish(DIGITS)
    store = JobStore(redis_client, 60)
    for n in range(70):
        submit_job(store, Job(id=f"j{n}", model="digits", model_version="1"))
    pool = FakePool({"worker-digits": 1})
    scaler = Autoscaler(redis_client, pool, {"worker-digits": ["digits"]},
                        {"worker-digits": Policy(min=1, max=4, target_backlog=32, up_cooldown_s=0)})
    with caplog.at_level(logging.INFO, logger="inferq.autoscaler"):
        [decision] = scaler.round(now=10.0)
    assert (decision.backlog, decision.current, decision.target) == (70, 1, 3)
    assert pool.calls == [("worker-digits", 3)]
    line = json.loads(caplog.records[-1].getMessage())
    assert line == {"event": "autoscale", "program": "worker-digits", "models": ["digits"], "backlog": 70,
                    "current": 1, "remote": 0, "desired": 3, "target": 3, "reason": "backlog above target"}
    assert redis_client.hget(keys.AUTOSCALER_DESIRED, "worker-digits") == b"3"


def test_a_model_no_worker_has_loaded_gets_one_worker_even_with_min_zero(redis_client):
    pool = FakePool({"worker-new": 0})
    scaler = Autoscaler(redis_client, pool, {"worker-new": ["new"]}, {"worker-new": Policy(min=0, max=2)})
    [decision] = scaler.round(now=1.0)
    assert decision.target == 1 and "publish" in decision.reason


def test_workers_on_other_hosts_carry_their_share_of_the_backlog(redis_client):
    import time

    ModelCatalog(redis_client).publish(DIGITS)
    store = JobStore(redis_client, 60)
    for n in range(70):
        submit_job(store, Job(id=f"j{n}", model="digits", model_version="1"))
    now = time.time()
    redis_client.zadd(keys.workers("digits"), {"worker-digits-0@here": now, "remote-1": now, "remote-2": now,
                                               "long-gone": now - 600})
    pool = FakePool({"worker-digits": 1})
    scaler = Autoscaler(redis_client, pool, {"worker-digits": ["digits"]},
                        {"worker-digits": Policy(min=1, max=4, target_backlog=32, up_cooldown_s=0)})
    [decision] = scaler.round(now=10.0)
    assert (decision.remote, decision.target) == (2, 1)  # 3 wanted, 2 already elsewhere


def test_a_backlog_that_touches_zero_between_jobs_does_not_scale_down():
    pacer = Pacer(Policy(min=0, max=2, target_backlog=10, up_cooldown_s=1, down_cooldown_s=8))
    pacer.last_change = 0.0
    for tick in range(40):  # a steady stream: one job waiting every other reading
        decision = pacer.decide("p", backlog=tick % 2, current=1, now=10.0 + tick * 0.5)
        assert decision.target == 1, decision
    quiet = [pacer.decide("p", backlog=0, current=1, now=30.0 + tick * 0.5) for tick in range(20)]
    first_zero = next(i for i, d in enumerate(quiet) if d.target == 0)
    assert 7.5 <= first_zero * 0.5 <= 8.5  # once nothing has waited for a whole window (8 s)


def test_a_worker_program_added_while_running_is_adopted_with_its_models_policy(redis_client):
    settings = Settings(autoscale_max=3, autoscale_overrides="late:min=0,max=2")
    pool = FakePool({"worker-digits": 1})
    scaler = Autoscaler(redis_client, pool, {"worker-digits": ["digits"]},
                        policies(settings, {"worker-digits": ["digits"]}),
                        policies_for=lambda new: policies(settings, new))
    pool.count["worker-late+other"] = 0  # supervisord gained a program for two new models
    decisions = scaler.round(now=1.0)
    assert scaler.programs["worker-late+other"] == ["late", "other"]
    assert scaler.pacers["worker-late+other"].policy.max == 2
    adopted = next(d for d in decisions if d.program == "worker-late+other")
    assert adopted.target == 1 and "publish" in adopted.reason  # woken to load and publish
