"""The messages the API writes are consumed by a stock Celery prefork worker, too."""
import os
import subprocess
import sys
import time

import pytest
import requests

from tests.integration.helpers import submit, wait_for
from tests.integration.stack import ROOT


@pytest.fixture
def prefork_worker(stack, tmp_path):
    import keras

    inputs = keras.Input(shape=(3,), name="triple")
    model = keras.Model(inputs, keras.layers.Rescaling(3.0, name="tripled")(inputs))
    (tmp_path / "models" / "triple" / "1").mkdir(parents=True)
    model.save(tmp_path / "models" / "triple" / "1" / "model.keras")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env.update(INFERQ_REDIS_URL=stack.redis_url(), INFERQ_MODELS_DIR=str(tmp_path / "models"),
               INFERQ_WORKER_MODE="prefork", INFERQ_WORKER_CONCURRENCY="1", TF_CPP_MIN_LOG_LEVEL="2")
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "workers.inference", "triple"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        names = [m["name"] for m in requests.get(f"{stack.url}/v1/models", timeout=5).json()["models"]
                 if m["state"] == "ready"]  # listed while loading too
        if "triple" in names:
            break
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        time.sleep(0.5)
    yield worker
    worker.terminate()
    worker.wait(60)


def test_a_stock_celery_prefork_worker_runs_jobs_the_api_queued(stack, http, prefork_worker):
    job = wait_for(http, stack.url, submit(http, stack.url, "triple", [[1, 2, 3], [0.5, 0, -1]]).json()["id"])
    assert job["status"] == "succeeded", job
    assert job["predictions"] == [[3.0, 6.0, 9.0], [1.5, 0.0, -3.0]]
    assert "timings" not in job
