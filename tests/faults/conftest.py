"""A stack of its own for fault injection: two worker processes serving digits and the chaos
model, compressed webhook retries to a local receiver, short liveness timeouts."""
from __future__ import annotations

import base64

import pytest

from tests.faults.harness import Oracle
from tests.integration.stack import copy_demo_model, start_stack, stop_stack

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"fault-suite-webhook-signing-key!").decode()
WORKER_GROUP = "worker-digits+chaos"
WORKERS = [f"{WORKER_GROUP}:{WORKER_GROUP}-{n}" for n in range(2)]
"""supervisord names of the two worker processes."""


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory):
    from tests.fixtures.chaos_layer import build_chaos_model

    base = tmp_path_factory.mktemp("faults")
    models_dir = base / "models"
    copy_demo_model(models_dir)
    (models_dir / "chaos" / "1").mkdir(parents=True)
    build_chaos_model().save(models_dir / "chaos" / "1" / "model.keras")
    (models_dir / "chaos" / "1" / "inferq.yaml").write_text("time_limit_s: 6\nbatching:\n  max_batch_size: 8\n")
    stack = start_stack(base, models_dir, {"digits", "chaos"}, {
        "INFERQ_WORKER_IMPORTS": "tests.fixtures.chaos_layer",
        "INFERQ_WORKER_GROUPS": "digits+chaos",
        "INFERQ_WORKERS_PER_MODEL": "2",
        "INFERQ_WORKER_DEAD_S": "8",
        "INFERQ_VISIBILITY_TIMEOUT_S": "3",
        "INFERQ_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "INFERQ_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "INFERQ_WEBHOOK_SCHEDULE_S": "0.5,1,1,1,1,1,1,1,1,1",
        "INFERQ_WEBHOOK_TIMEOUT_S": "3",
        "INFERQ_WEBHOOK_LOST_AFTER_S": "10",
    })
    yield stack
    code = stop_stack(stack)
    assert code == 0, stack.logs()



@pytest.fixture
def oracle(fault_stack, receiver):
    return Oracle(fault_stack.url, fault_stack.redis_url(), receiver, WEBHOOK_SECRET)
