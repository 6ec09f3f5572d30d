"""The model repository through the real stack: formats, metadata, version routing, image
uploads, TF Serving's REST API, two models at once, and rolling updates under load."""
from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import requests
from PIL import Image

from tests.fixtures.repository import ROLLING_CONFIG, build_pair, build_scaled, save
from tests.integration.helpers import TERMINAL, assert_problem, submit, wait_for, wait_until

ROUTE_CACHE_S = 2.0
"""How long a web process may keep routing to the version it last saw (its catalog cache)."""


def model_info(http, stack, name: str) -> dict:
    return http.get(f"{stack.url}/v1/models/{name}", timeout=10).json()


def run(http, stack, model: str, body: dict, path: str = "jobs") -> dict:
    response = http.post(f"{stack.url}/v1/models/{model}/{path}", json=body, timeout=30)
    assert response.status_code == 202, response.text
    return wait_for(http, stack.url, response.json()["id"])


def test_a_saved_model_with_named_inputs_serves_rows_and_columns(stack, http):
    model = build_pair()
    a = [[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]]
    b = [[10.0, 20.0], [1.0, 1.0]]
    total, first = (np.asarray(o) for o in model([np.array(a, np.float32), np.array(b, np.float32)]))
    rows = run(http, stack, "pair", {"instances": [{"a": x, "b": y} for x, y in zip(a, b, strict=True)]})
    columns = run(http, stack, "pair", {"inputs": {"a": a, "b": b}})
    for job in (rows, columns):
        assert job["status"] == "succeeded", job
        got = job["predictions"]
        np.testing.assert_allclose([p["output_0"] for p in got], total, rtol=1e-6)
        np.testing.assert_allclose([p["output_1"] for p in got], first, rtol=1e-6)
    info = model_info(http, stack, "pair")
    assert info["config"]["format"] == "saved_model" and [i["name"] for i in info["inputs"]] == ["a", "b"]


def test_a_legacy_h5_model_answers_top_k_labels(stack, http):
    job = run(http, stack, "legacy", {"instances": [[1, 2, 3, 4]]})
    assert job["status"] == "succeeded", job
    scores = job["predictions"][0]
    order = np.argsort(scores)[::-1][:2]
    assert [t["label"] for t in job["labels"][0]] == [["cat", "dog", "bird"][i] for i in order]
    assert model_info(http, stack, "legacy")["config"]["format"] == "h5"


def test_metadata_shows_signature_batching_state_and_workers(stack, http):
    info = model_info(http, stack, "digits")
    assert info["state"] == "ready" and info["workers"] >= 1
    assert info["inputs"] == [{"name": "image", "shape": [None, 8, 8], "dtype": "float32"}]
    assert info["config"]["batching"]["max_batch_size"] == 32
    assert info["config"]["preprocessing"]["image"]["size"] == [8, 8]
    assert info["model_version_status"][0]["state"] == "AVAILABLE"
    version = http.get(f"{stack.url}/v1/models/digits/versions/1", timeout=10).json()
    assert version["state"] == "ready" and version["outputs"][0]["shape"] == [None, 10]


def test_unpinned_jobs_go_to_the_newest_version_and_pinned_jobs_to_theirs(stack, http):
    newest = run(http, stack, "scaled", {"instances": [[3.0]]})
    pinned = run(http, stack, "scaled", {"instances": [[3.0]]}, path="versions/1/jobs")
    assert (newest["model_version"], newest["predictions"]) == ("2", [[6.0]])
    assert (pinned["model_version"], pinned["predictions"]) == ("1", [[3.0]])
    assert_problem(http.post(f"{stack.url}/v1/models/scaled/versions/9/jobs", json={"instances": [[1.0]]}), 404)


def test_tf_serving_clients_get_predictions_and_outputs(stack, http):
    rows = http.post(f"{stack.url}/v1/models/scaled:predict", json={"instances": [[1.5], [2.0]]}, timeout=40)
    assert rows.status_code == 200, rows.text
    assert rows.json() == {"predictions": [[3.0], [4.0]]}
    assert rows.headers["Inferq-Model-Version"] == "2"
    pinned = http.post(f"{stack.url}/v1/models/scaled/versions/1:predict",
                       json={"signature_name": "serving_default", "inputs": [[1.5]]}, timeout=40)
    assert pinned.json() == {"outputs": [[1.5]]}
    columns = http.post(f"{stack.url}/v1/models/pair:predict",
                        json={"inputs": {"a": [[1, 2, 3]], "b": [[4, 5]]}}, timeout=40).json()
    assert columns == {"outputs": {"output_0": [[15.0]], "output_1": [[1.0]]}}
    failed = assert_problem(http.post(f"{stack.url}/v1/models/faulty:predict",
                                      json={"instances": [[500, 0, 0, 0]]}, timeout=40), 422)
    assert "failure limit" in failed["error"]


def png_of(digit: np.ndarray) -> bytes:
    """A digit as a scanned image: dark ink (16) on white paper (0)."""
    pixels = np.round(255 - digit * (255 / 16)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_uploads_predict_the_same_as_json_and_npy(stack, http, digits):
    images = digits.images[:3]
    files = [("image", (f"{i}.png", png_of(d), "image/png")) for i, d in enumerate(images)]
    uploaded = http.post(f"{stack.url}/v1/models/digits/jobs", files=files, timeout=30)
    assert uploaded.status_code == 202, uploaded.text
    from_images = wait_for(http, stack.url, uploaded.json()["id"])
    # What the documented preprocessing makes of those PNGs, sent as JSON and as .npy.
    decoded = np.stack([(255.0 - np.asarray(Image.open(io.BytesIO(png_of(d))), np.float32)) * np.float32(0.0627451)
                        for d in images]).astype(np.float32)
    from_json = wait_for(http, stack.url, submit(http, stack.url, "digits", decoded.tolist()).json()["id"])
    buffer = io.BytesIO()
    np.save(buffer, decoded)
    npy = http.post(f"{stack.url}/v1/models/digits/jobs", data=buffer.getvalue(),
                    headers={"Content-Type": "application/x-npy"}, timeout=30)
    from_npy = wait_for(http, stack.url, npy.json()["id"])
    assert from_images["status"] == from_json["status"] == from_npy["status"] == "succeeded"
    np.testing.assert_allclose(from_images["predictions"], from_json["predictions"], atol=1e-6)
    np.testing.assert_allclose(from_images["predictions"], from_npy["predictions"], atol=1e-6)
    assert [top[0]["label"] for top in from_images["labels"]] == [str(t) for t in digits.target[:3]]


def test_a_slow_model_does_not_delay_a_fast_one(stack, http, digits):
    heavy = np.random.default_rng(0).normal(size=(256, 512)).astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, heavy)
    slow_ids = []
    for _ in range(24):
        response = http.post(f"{stack.url}/v1/models/slow/jobs", data=buffer.getvalue(),
                             headers={"Content-Type": "application/x-npy"}, timeout=30)
        assert response.status_code == 202
        slow_ids.append(response.json()["id"])
    latencies = []
    for digit in digits.images[:5]:
        began = time.monotonic()
        job = http.post(f"{stack.url}/v1/models/digits/jobs", json={"instances": [digit.tolist()]},
                        headers={"Prefer": "wait=20"}, timeout=30).json()
        latencies.append(time.monotonic() - began)
        assert job["status"] == "succeeded"
    still_slow = [http.get(f"{stack.url}/v1/jobs/{i}", timeout=10).json()["status"] for i in slow_ids]
    assert any(s not in TERMINAL for s in still_slow), "the slow backlog drained before the fast jobs ran"
    assert max(latencies) < 2.0, latencies
    for job_id in slow_ids:
        assert wait_for(http, stack.url, job_id, deadline_s=180)["status"] == "succeeded"


def test_reload_reaches_every_worker(stack, http):
    response = http.post(f"{stack.url}/v1/models:reload", timeout=10)
    assert response.status_code == 202 and response.json()["workers_notified"] >= 3


def test_a_model_dropped_in_under_a_new_name_is_served_without_a_restart(stack, http):
    digits_worker = stack.program_pid("worker-digits")
    save(build_scaled(7), stack.models_dir / "newcomer" / "1")

    def served():  # published by its worker, whose heartbeat follows once its consumer runs
        info = model_info(http, stack, "newcomer")
        return info if info.get("state") == "ready" and info.get("workers") == 1 else None

    info = wait_until(served, 120, "the new model to be loaded, published and served")
    assert info["inputs"][0]["name"] == "x"
    done = run(http, stack, "newcomer", {"instances": [[2.0]]})
    assert (done["model_version"], done["predictions"]) == ("1", [[14.0]])
    assert " RUNNING " in stack.supervisorctl("status", "worker-newcomer")
    assert stack.program_pid("worker-digits") == digits_worker  # running programs are left alone


class Submitter:
    """Submits ``rolling`` jobs from several threads until stopped; remembers when and what."""

    def __init__(self, url: str, threads: int = 3):
        self.url = url
        self.sent: list[tuple[float, str, float]] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _run(self, offset: int) -> None:
        session = requests.Session()
        n = offset
        while not self.stopping.is_set():
            x = float(n % 9 + 1)
            sent_at = time.time()
            try:
                response = session.post(f"{self.url}/v1/models/rolling/jobs", json={"instances": [[x]]}, timeout=10)
            except requests.RequestException as exc:
                self.errors.append(repr(exc))
                continue
            if response.status_code != 202:
                self.errors.append(response.text)
            else:
                self.sent.append((sent_at, response.json()["id"], x))
            n += len(self.threads)
            time.sleep(0.02)


def test_a_rolling_update_under_load_fails_no_job_and_loses_none(stack, http):
    models_dir = stack.models_dir
    with Submitter(stack.url) as load:
        time.sleep(1.5)
        dropped_at = time.time()
        save(build_scaled(2), models_dir / "rolling" / "2", config=ROLLING_CONFIG)
        wait_until(lambda: model_info(http, stack, "rolling").get("latest_version") == 2, 60, "version 2 to be ready")
        ready_at = time.time()
        time.sleep(ROUTE_CACHE_S + 2.0)
    assert load.errors == []
    assert len(load.sent) > 50
    jobs = {job_id: wait_for(http, stack.url, job_id, deadline_s=60) for _, job_id, _ in load.sent}
    statuses = {job["status"] for job in jobs.values()}
    assert statuses == {"succeeded"}, statuses
    for sent_at, job_id, x in load.sent:
        job = jobs[job_id]
        version = int(job["model_version"])
        assert job["predictions"] == [[version * x]], job  # served by the version it was routed to
        if sent_at < dropped_at:
            assert version == 1
        if sent_at > ready_at + ROUTE_CACHE_S + 0.5:
            assert version == 2
    assert {int(j["model_version"]) for j in jobs.values()} == {1, 2}
    # keep_versions: 1, so version 1 unloads once its jobs have ended.
    wait_until(lambda: http.get(f"{stack.url}/v1/models/rolling/versions/1", timeout=10).json()["state"] == "retired",
          30, "version 1 to be unloaded")
    assert model_info(http, stack, "rolling")["versions"] == [2]


def test_a_broken_new_version_is_refused_and_the_old_one_keeps_serving(stack, http):
    models_dir = stack.models_dir
    wait_until(lambda: model_info(http, stack, "rolling").get("latest_version", 0) >= 1, 10, "rolling")
    serving = model_info(http, stack, "rolling")["latest_version"]
    corrupt = models_dir / "rolling" / "7"
    corrupt.mkdir()
    (corrupt / "model.keras").write_bytes(b"this is not a zip archive")
    failed = wait_until(lambda: (lambda v: v if v.get("state") == "failed" else None)(
        http.get(f"{stack.url}/v1/models/rolling/versions/7", timeout=10).json()), 30, "version 7 refused")
    assert failed["reason"]
    save(build_scaled(8, features=3), models_dir / "rolling" / "8", config=ROLLING_CONFIG)
    refused = wait_until(lambda: (lambda v: v if v.get("state") == "failed" else None)(
        http.get(f"{stack.url}/v1/models/rolling/versions/8", timeout=10).json()), 30, "version 8 refused")
    assert f"differ from version {serving}" in refused["reason"]
    job = run(http, stack, "rolling", {"instances": [[2.0]]})
    assert (job["status"], job["model_version"], job["predictions"]) == ("succeeded", str(serving), [[2.0 * serving]])
    info = model_info(http, stack, "rolling")
    assert info["latest_version"] == serving
    assert {v["version"]: v["state"] for v in info["version_states"]}[7] == "failed"


@pytest.mark.parametrize("model, body, detail", [
    ("digits", {"instances": [[[0.0] * 8] * 8, [[0.0] * 8] * 7]},
     "instances[1] has shape (7, 8), model digits expects (8, 8)"),
    ("pair", {"instances": [{"a": [1, 2, 3], "b": [1, 2, 3]}]}, "instances[0].b has shape (3,), model pair expects (2,)"),
    ("pair", {"inputs": {"a": [[1, 2, 3], [4, 5, 6]], "b": [[1, 2], [3]]}}, "inputs.b[1] has shape (1,), model pair expects (2,)"),
])
def test_shape_errors_name_index_expected_and_received(stack, http, model, body, detail):
    problem = assert_problem(http.post(f"{stack.url}/v1/models/{model}/jobs", json=body, timeout=10), 422)
    assert detail in problem["detail"]
    assert {"instance", "expected_shape", "received_shape"} <= set(problem)
