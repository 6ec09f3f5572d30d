"""The real stack for integration tests: redis-server, Celery workers with the real digits
model (plus a model that fails on purpose), gunicorn behind nginx."""
from __future__ import annotations

import os
import shutil

import pytest
import requests

from tests.integration.stack import copy_demo_model, start_stack, stop_stack

ROOT_MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "models")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is required (apt-get install redis-server)")
    base = tmp_path_factory.mktemp("stack")
    models_dir = base / "models"
    copy_demo_model(models_dir)
    from tests.fixtures.failing_layer import build_faulty_model

    (models_dir / "faulty" / "1").mkdir(parents=True)
    build_faulty_model().save(models_dir / "faulty" / "1" / "model.keras")
    running = start_stack(base, models_dir, {"digits", "faulty"}, {
        "INFERQ_WORKER_IMPORTS": "tests.fixtures.failing_layer",
        "INFERQ_MAX_BODY_BYTES": str(1024 * 1024),
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
