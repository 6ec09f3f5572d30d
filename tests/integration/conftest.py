"""The real stack for integration tests: redis-server, Celery workers with the real digits
model (plus a model that fails on purpose), gunicorn behind nginx."""
from __future__ import annotations

import base64
import os

import pytest
import requests

from tests.integration.stack import copy_demo_model, start_stack, stop_stack

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"integration-tests-webhook-key-32b").decode()

ROOT_MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "models")


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("stack")
    models_dir = base / "models"
    copy_demo_model(models_dir)
    from tests.fixtures.failing_layer import build_faulty_model
    from tests.fixtures.repository import populate

    (models_dir / "faulty" / "1").mkdir(parents=True)
    build_faulty_model().save(models_dir / "faulty" / "1" / "model.keras")
    populate(models_dir)
    running = start_stack(base, models_dir, {"digits", "faulty", "pair", "legacy", "scaled", "rolling", "slow"}, {
        "INFERQ_WORKER_IMPORTS": "tests.fixtures.failing_layer",
        # Small test models share one worker process; each still has its own queue.
        "INFERQ_WORKER_GROUPS": "pair+legacy+scaled+rolling",
        "INFERQ_RELOAD_INTERVAL_S": "0.5",
        "INFERQ_RELOAD_SETTLE_S": "0.5",
        "INFERQ_RETIRE_GRACE_S": "3",
        "INFERQ_MAX_BODY_BYTES": str(1024 * 1024),
        # Low enough that a body under the 1 MiB limit can hold more values (the catalogue's case).
        "INFERQ_MAX_JSON_VALUES": "200000",
        # Webhook receivers in tests live on loopback, and retries are compressed.
        "INFERQ_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "INFERQ_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "INFERQ_WEBHOOK_SCHEDULE_S": "0.5,1,1,1,1,1,1,1",
        "INFERQ_WEBHOOK_TIMEOUT_S": "3",
        "INFERQ_WEBHOOK_CONNECT_TIMEOUT_S": "1",
    })
    yield running
    code = stop_stack(running)
    assert code == 0, running.logs()


@pytest.fixture(scope="session")
def http():
    session = requests.Session()
    yield session
    session.close()


@pytest.fixture(scope="session")
def digits_model():
    """The real demo model, loaded in-process to compute reference outputs with model(x)."""
    import keras

    return keras.saving.load_model(os.path.join(ROOT_MODELS, "digits", "1", "model.keras"), compile=False)


@pytest.fixture(scope="session")
def digits():
    from sklearn.datasets import load_digits

    return load_digits()

