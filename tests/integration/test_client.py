"""The Python client and the inferq CLI against the real stack."""
import asyncio
import inspect
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests

from inferq_client import AsyncClient, Client, Conflict, JobFailed, NotFound, ValidationError, WaitTimeout
from tests.integration.helpers import submit as http_submit
from tests.integration.helpers import wait_until


@pytest.fixture
def client(stack):
    with Client(stack.url, timeout=30) as running:
        yield running


def test_submit_get_wait_and_predict(client, digits, digits_model):
    job = client.submit("digits", digits.images[:3].tolist())
    assert job.status == "queued" and not job.done
    finished = client.wait(job.id, timeout=60)
    assert finished.status == "succeeded" and len(finished.predictions) == 3
    assert client.get(job.id).status == "succeeded"
    expected = np.asarray(digits_model(digits.images[:3].astype(np.float32)))
    np.testing.assert_allclose(client.predict("digits", digits.images[:3].tolist()), expected, atol=1e-6)


def test_numpy_arrays_travel_as_npy(client, digits):
    from_array = client.predict("digits", digits.images[:4].astype(np.uint8))
    from_lists = client.predict("digits", digits.images[:4].tolist())
    np.testing.assert_allclose(from_array, from_lists, rtol=1e-6)


def test_typed_errors(client):
    with pytest.raises(NotFound):
        client.get("00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValidationError) as caught:
        client.submit("digits", [[1, 2, 3]])
    assert "expects (8, 8)" in caught.value.problem["detail"]
    with pytest.raises(JobFailed) as failed:
        client.predict("faulty", [[999, 0, 0, 0]])
    assert failed.value.error["type"] == "InvalidArgumentError"


def test_wait_times_out_and_cancel_works(stack, client):
    stack.supervisorctl("stop", "worker-faulty")
    try:
        job = client.submit("faulty", [[1, 2, 3, 4]])
        with pytest.raises(WaitTimeout):
            client.wait(job.id, timeout=1)
        assert client.cancel(job.id).status == "canceled"
        with pytest.raises(Conflict):
            client.cancel(job.id)
    finally:
        stack.supervisorctl("start", "worker-faulty")


def test_models_lists_signatures(client):
    names = {m["name"]: m for m in client.models()}
    assert names["digits"]["inputs"][0]["shape"] == [None, 8, 8]


def test_idempotency_key_returns_the_original_job_and_refuses_another_body(client, digits):
    first = client.submit("digits", digits.images[:1].tolist(), idempotency_key="order-42")
    again = client.submit("digits", digits.images[:1].tolist(), idempotency_key="order-42")
    assert again.id == first.id
    with pytest.raises(Conflict):
        client.submit("digits", digits.images[1:2].tolist(), idempotency_key="order-42")


def test_version_pinning(client, digits):
    job = client.wait(client.submit("digits", digits.images[:1].tolist(), version=1).id, timeout=60)
    assert job.model_version == "1" and job.status == "succeeded"
    with pytest.raises(NotFound):
        client.submit("digits", digits.images[:1].tolist(), version=7)


def test_map_keeps_order_and_survives_a_503_in_the_middle(stack, client, digits):
    images = [digits.images[i % len(digits.images)].tolist() for i in range(5000)]
    expected_first = client.predict("digits", images[:64])
    outage = threading.Timer(1.0, lambda: (stack.supervisorctl("stop", "redis"), time.sleep(3),
                                           stack.supervisorctl("start", "redis")))
    outage.start()
    results = list(client.map("digits", images, batch_size=64, concurrency=4, progress=False))
    outage.join()
    # Redis answers LOADING while it replays its AOF; later tests want it serving again.
    wait_until(lambda: requests.get(stack.url + "/readyz", timeout=5).status_code == 200, 60, "Redis back")
    assert len(results) == 5000
    np.testing.assert_allclose(results[:64], expected_first, rtol=1e-5)
    predicted = np.argmax(np.asarray(results), axis=1)
    labels = np.asarray([digits.target[i % len(digits.images)] for i in range(5000)])
    assert np.mean(predicted == labels) >= 0.95  # right order: predictions line up with labels


def test_async_client_has_the_same_surface_and_works(stack, digits):
    public = {name for name, _ in inspect.getmembers(Client, inspect.isfunction) if not name.startswith("_")}
    async_public = {name for name, _ in inspect.getmembers(AsyncClient, inspect.isfunction)
                    if not name.startswith("_")}
    assert public == async_public

    async def scenario():
        async with AsyncClient(stack.url) as client:
            job = await client.submit("digits", digits.images[:2].tolist())
            finished = await client.wait(job.id, timeout=60)
            predicted = await client.predict("digits", digits.images[:2].tolist())
            streamed = [p async for p in client.map("digits", digits.images[:300].tolist(), batch_size=50,
                                                    progress=False)]
            return finished, predicted, streamed, await client.models()

    finished, predicted, streamed, models = asyncio.run(scenario())
    np.testing.assert_allclose(finished.predictions, predicted, rtol=1e-5, atol=1e-7)
    assert len(streamed) == 300
    np.testing.assert_allclose(streamed[:2], predicted, rtol=1e-5, atol=1e-7)  # other batch sizes
    assert "digits" in {m["name"] for m in models}


def run_cli(stack, *args, check=None):
    env = {**os.environ, "INFERQ_URL": stack.url}
    result = subprocess.run([sys.executable, "-m", "inferq_client.cli", *args], capture_output=True, text=True,
                            env=env, timeout=300)
    if check is not None:
        assert result.returncode == check, (result.returncode, result.stdout, result.stderr)
    return result


@pytest.fixture
def sample(tmp_path, digits):
    path = tmp_path / "sample.json"
    path.write_text(json.dumps({"instances": digits.images[:2].tolist()}))
    return str(path)


def test_cli_submit_status_wait_predict_models_cancel(stack, sample, tmp_path):
    job_id = run_cli(stack, "submit", "digits", sample, check=0).stdout.strip()
    assert run_cli(stack, "wait", job_id, check=0).stdout.startswith(f"{job_id} succeeded")
    status = json.loads(run_cli(stack, "--json", "status", job_id, check=0).stdout)
    assert status["status"] == "succeeded" and len(status["predictions"]) == 2
    predictions = json.loads(run_cli(stack, "predict", "digits", sample, check=0).stdout)
    assert len(predictions) == 2 and len(predictions[0]) == 10
    models = json.loads(run_cli(stack, "--json", "models", check=0).stdout)["models"]
    assert "digits" in {m["name"] for m in models}
    assert "digits  v[1]  ready" in run_cli(stack, "models", check=0).stdout
    assert json.loads(run_cli(stack, "--json", "models", "reload", check=0).stdout)["workers_notified"] >= 3
    npy = tmp_path / "sample.npy"
    np.save(npy, np.zeros((3, 8, 8), dtype=np.uint8))
    assert len(json.loads(run_cli(stack, "predict", "digits", str(npy), check=0).stdout)) == 3
    refused = run_cli(stack, "cancel", job_id, check=3)
    assert "error:" in refused.stderr


def test_cli_exit_codes(stack, tmp_path, sample):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([[1, 2, 3]]))
    assert "expects (8, 8)" in run_cli(stack, "submit", "digits", str(bad), check=3).stderr
    run_cli(stack, "status", "no-such-job", check=3)
    failing = tmp_path / "failing.json"
    failing.write_text(json.dumps([[500, 0, 0, 0]]))
    run_cli(stack, "predict", "faulty", str(failing), check=1)
    run_cli(stack, "--url", "http://127.0.0.1:9", "models", check=4)
    run_cli(stack, "frobnicate", check=2)
    assert "Usage" in run_cli(stack, "map", "--help", check=0).stdout


def test_cli_wait_times_out_with_exit_5(stack, tmp_path):
    stack.supervisorctl("stop", "worker-faulty")
    try:
        job_id = http_submit(requests.Session(), stack.url, "faulty", [[1, 1, 1, 1]]).json()["id"]
        run_cli(stack, "wait", job_id, "--wait-timeout", "1", check=5)
    finally:
        stack.supervisorctl("start", "worker-faulty")


def test_cli_map_writes_in_order_resumes_and_logs_sparingly(stack, tmp_path, digits):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(digits.images[i % 100].tolist()) + "\n" for i in range(600)))
    out = tmp_path / "out.jsonl"
    out.write_text("".join(json.dumps([0.0] * 10) + "\n" for _ in range(200)))  # a run stopped at 200
    result = run_cli(stack, "map", "digits", str(source), "--out", str(out), "--batch-size", "50", check=0)
    assert "resumed after 200" in result.stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 600
    labels = [digits.target[i % 100] for i in range(200, 600)]
    assert np.mean(np.argmax([json.loads(line) for line in lines[200:]], axis=1) == labels) >= 0.95
    # Not a TTY: a few plain progress lines at most, no carriage-return spam.
    assert "\r" not in result.stderr and len(result.stderr.splitlines()) <= 5


def test_cli_top_shows_each_model(stack):
    rows = json.loads(run_cli(stack, "--json", "top", "--once", check=0).stdout)
    digits_row = next(row for row in rows if row["model"] == "digits")
    assert digits_row["workers"] >= 1 and digits_row["p50_ms"] is not None
    assert "digits" in run_cli(stack, "top", "--once", check=0).stdout


def test_deliveries_and_metrics(client, receiver, digits):
    job = client.submit("digits", digits.images[:1].tolist(), webhook={"url": receiver.url + "/hook"})
    client.wait(job.id, timeout=60)
    receiver.wait_for(1)
    deadline = time.monotonic() + 10
    while not client.deliveries(job.id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.deliveries(job.id)[0]["outcome"] == "delivered"
    assert "inferq_jobs_submitted_total" in client.metrics()
