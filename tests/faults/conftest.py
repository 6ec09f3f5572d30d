"""Stacks of their own for fault injection: two worker processes serving digits and the chaos
model, compressed webhook retries to a local receiver, short liveness timeouts; and the same on
a replicated Redis with Sentinels, for the failover faults."""
from __future__ import annotations

import base64

import pytest
import requests

from tests.faults.harness import Oracle
from tests.faults.redis_set import RedisSet
from tests.integration.helpers import wait_until
from tests.integration.stack import copy_demo_model, free_port, start_stack, stop_stack

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fault-suite-webhook-signing-key!").decode()
WORKER_GROUP = "worker-digits+chaos"
WORKERS = [f"{WORKER_GROUP}:{WORKER_GROUP}-{n}" for n in range(2)]
"""supervisord names of the two worker processes."""


FAULT_ENV = {
    "INFERQ_WORKER_IMPORTS": "tests.fixtures.chaos_layer",
    "INFERQ_WORKER_GROUPS": "digits+chaos",
    "INFERQ_WORKER_DEAD_S": "8",
    "INFERQ_VISIBILITY_TIMEOUT_S": "3",
    "INFERQ_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "INFERQ_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
    "INFERQ_WEBHOOK_SCHEDULE_S": "0.5,1,1,1,1,1,1,1,1,1",
    "INFERQ_WEBHOOK_TIMEOUT_S": "3",
    "INFERQ_WEBHOOK_LOST_AFTER_S": "10",
}
"""Both fault stacks: digits and the chaos model in one worker program, compressed timeouts."""


def _models(base):
    from tests.fixtures.chaos_layer import build_chaos_model

    models_dir = base / "models"
    copy_demo_model(models_dir)
    (models_dir / "chaos" / "1").mkdir(parents=True)
    build_chaos_model().save(models_dir / "chaos" / "1" / "model.keras")
    (models_dir / "chaos" / "1" / "inferq.yaml").write_text("time_limit_s: 6\nbatching:\n  max_batch_size: 8\n")
    return models_dir


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    stack = start_stack(base, _models(base), {"digits", "chaos"}, {**FAULT_ENV, "INFERQ_WORKERS_PER_MODEL": "2"})
    yield stack
    code = stop_stack(stack)
    assert code == 0, stack.logs()


@pytest.fixture
def oracle(fault_stack, receiver):
    return Oracle(fault_stack.url, fault_stack.redis_url(), receiver, WEBHOOK_SECRET)


@pytest.fixture(scope="module")
def failover_stack(tmp_path_factory):
    """The same stack on a primary, two replicas and three Sentinels (``INFERQ_LOCAL_REDIS_REPLICAS=2``),
    every accepted job confirmed by one replica; one worker process."""
    base = tmp_path_factory.mktemp("failover")
    stack = start_stack(base, _models(base), {"digits", "chaos"}, {
        **FAULT_ENV, "INFERQ_LOCAL_REDIS_REPLICAS": "2", "INFERQ_LOCAL_SENTINEL_PORT": str(free_port())})
    wait_until(lambda: requests.get(stack.url + "/readyz", timeout=5).status_code == 200, 60,
               "the replicas to be in sync (/readyz)", step_s=0.5)
    yield stack
    code = stop_stack(stack)
    assert code == 0, stack.logs()


@pytest.fixture
def redis_set(failover_stack):
    return RedisSet(failover_stack)


@pytest.fixture
def failover_oracle(failover_stack, redis_set, receiver):
    return Oracle(failover_stack.url, "", receiver, WEBHOOK_SECRET, client=redis_set.primary_client())
