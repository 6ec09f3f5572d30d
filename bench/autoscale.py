"""Autoscaler against fixed pools under one stepped load: idle, burst, steady, idle.

    .venv/bin/python -m bench.autoscale      (also run by make bench)

Three stacks in turn serve the same open-loop schedule of digits jobs (64 instances each):
the autoscaler (0 to 2 workers), a fixed pool sized for the peak (2) and a fixed pool of 1.
Latency is per job from the job record (created to finished); worker-seconds integrate the
number of running worker processes, sampled from supervisord every 0.25 s. The section it
writes into bench/RESULTS.md sits between markers, so the other benchmarks leave it alone.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import sections  # noqa: E402
from tests.integration.stack import copy_demo_model, start_stack, stop_stack  # noqa: E402

PHASES = [("idle", 10, 0), ("burst", 20, 120), ("steady", 25, 25), ("idle", 20, 0)]
"""(name, seconds, jobs per second): the schedule every configuration serves."""

INSTANCES = 64
START, END = "<!-- autoscaling:start -->", "<!-- autoscaling:end -->"
AUTOSCALED = {"INFERQ_AUTOSCALE": "true", "INFERQ_AUTOSCALE_INTERVAL_S": "0.5"}
CONFIGS = {
    "autoscaler (1-2 workers)": {**AUTOSCALED, "INFERQ_AUTOSCALE_OVERRIDES": "digits:min=1,max=2,target_backlog=16,"
                                                                            "up_cooldown_s=2,down_cooldown_s=8"},
    "autoscaler (0-2 workers)": {**AUTOSCALED, "INFERQ_AUTOSCALE_OVERRIDES": "digits:min=0,max=2,target_backlog=16,"
                                                                            "up_cooldown_s=2,down_cooldown_s=8"},
    "fixed pool of 2 (peak)": {"INFERQ_AUTOSCALE": "false", "INFERQ_WORKERS_PER_MODEL": "2"},
    "fixed pool of 1": {"INFERQ_AUTOSCALE": "false", "INFERQ_WORKERS_PER_MODEL": "1"},
}


def workers_running(stack) -> int:
    return sum(1 for line in stack.supervisorctl("status").splitlines()
               if line.startswith("worker-digits") and " RUNNING " in line)


def wait_scaled_to_zero(stack) -> None:
    """Start idle: give a scale-to-zero autoscaler up to 60 s to stop its workers."""
    deadline = time.monotonic() + 60
    while workers_running(stack) and time.monotonic() < deadline:
        time.sleep(0.25)


def sample_workers(stack, samples: list, stop: threading.Event) -> None:
    """(time, running workers) every 0.25 s until stopped: what worker-seconds integrate."""
    while not stop.is_set():
        samples.append((time.monotonic(), workers_running(stack)))
        time.sleep(0.25)


def submitter(stack, digit: list, ids: list, errors: list):
    """A submit callable for the pool: one job, its id into ids or its failure into errors."""
    session_local = threading.local()

    def submit():
        session = getattr(session_local, "s", None) or requests.Session()
        session_local.s = session
        try:
            response = session.post(f"{stack.url}/v1/models/digits/jobs",
                                    json={"instances": [digit] * INSTANCES}, timeout=30)
            if response.status_code == 202:
                ids.append(response.json()["id"])
            else:
                errors.append(response.status_code)
        except requests.RequestException as exc:
            errors.append(type(exc).__name__)

    return submit


def play_schedule(submit) -> None:
    """Submit open loop at each phase's rate for its seconds (idle phases submit nothing)."""
    with ThreadPoolExecutor(32) as pool:
        for _, seconds, rate in PHASES:
            phase_end = time.monotonic() + seconds
            next_at = time.monotonic()
            while time.monotonic() < phase_end:
                if rate:
                    pool.submit(submit)
                    next_at += 1.0 / rate
                    time.sleep(max(0.0, next_at - time.monotonic()))
                else:
                    time.sleep(0.1)


def job_latencies(client: redis.Redis, ids: list, errors: list) -> list[float]:
    """Milliseconds from created to finished of each succeeded job; the other outcomes go to errors."""
    latencies = []
    for job_id in ids:
        deadline = time.monotonic() + 120
        while True:
            created, finished, status = client.hmget(f"inferq:job:{job_id}", "created_at", "finished_at", "status")
            if status in (b"succeeded", b"failed", b"canceled") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if status == b"succeeded":
            latencies.append((float(finished) - float(created)) * 1000)
        else:
            errors.append(status.decode() if status else "missing")
    return latencies


def run(name: str, env: dict, digit: list) -> dict:
    base = Path(tempfile.mkdtemp(prefix="inferq-autoscale-"))
    copy_demo_model(base / "models")
    stack = start_stack(base, base / "models", {"digits"}, env)
    try:
        if "min=0" in env.get("INFERQ_AUTOSCALE_OVERRIDES", ""):  # start idle: scaled to zero
            wait_scaled_to_zero(stack)
        samples, stop = [], threading.Event()
        sampler = threading.Thread(target=sample_workers, args=(stack, samples, stop))
        sampler.start()
        ids, errors = [], []
        submit = submitter(stack, digit, ids, errors)
        began = time.monotonic()
        play_schedule(submit)
        latencies = job_latencies(redis.Redis.from_url(stack.redis_url()), ids, errors)
        stop.set()
        sampler.join()
        worker_seconds = sum(count * (t2 - t1) for (t1, count), (t2, _) in zip(samples, samples[1:], strict=False))
        return {"config": name, "jobs": len(ids), "errors": len(errors),
                "p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
                "worker_seconds": worker_seconds, "seconds": time.monotonic() - began,
                "max_workers": max(c for _, c in samples)}
    finally:
        stop_stack(stack)
        shutil.rmtree(base, ignore_errors=True)


def render(rows: list[dict]) -> str:
    by_name = {r["config"]: r for r in rows}
    auto, zero, peak, one = (by_name[name] for name in CONFIGS)
    p99_ratio = auto["p99_ms"] / peak["p99_ms"]
    saved = 1 - auto["worker_seconds"] / peak["worker_seconds"]
    schedule = ", ".join(f"{name} {seconds} s at {rate} jobs/s" for name, seconds, rate in PHASES)
    lines = [START, "## Autoscaling (stepped load)", "",
             f"Produced by `make bench` (`python -m bench.autoscale`) on {time.strftime('%Y-%m-%d')}. "
             f"One open-loop schedule of digits jobs ({INSTANCES} instances each): {schedule}. "
             "Latency per job from its record (created to finished); worker-seconds integrate the running "
             "worker processes sampled every 0.25 s.", "",
             "| configuration | jobs | errors | p50 ms | p99 ms | worker-seconds | most workers |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['config']} | {row['jobs']} | {row['errors']} | {row['p50_ms']:.1f} | "
                     f"{row['p99_ms']:.1f} | {row['worker_seconds']:.0f} | {row['max_workers']} |")
    lines += ["", f"Autoscaler (1-2) vs the peak-sized pool: p99 {p99_ratio:.2f}x (goal <= 1.5x: "
                  f"{'met' if p99_ratio <= 1.5 else 'not met'}), worker-seconds {saved:.0%} fewer (goal >= 40%: "
                  f"{'met' if saved >= 0.4 else 'not met'}). Against a fixed pool of 1: p99 "
                  f"{auto['p99_ms'] / one['p99_ms']:.2f}x, worker-seconds "
                  f"{auto['worker_seconds'] / one['worker_seconds']:.2f}x. "
                  f"Scaling to zero (0-2) saves {1 - zero['worker_seconds'] / peak['worker_seconds']:.0%} of the "
                  f"worker-seconds, and its p99 ({zero['p99_ms']:.0f} ms) carries the wake-up: the first jobs of the "
                  "burst wait for a worker to load TensorFlow and the model."]
    if one["p99_ms"] <= peak["p99_ms"] * 1.2:
        lines += ["", f"Reading: on this machine one worker already serves the peak (p99 {one['p99_ms']:.0f} ms "
                      f"against {peak['p99_ms']:.0f} ms with two): web, nginx, Redis and the load generator share "
                      "the same cores, so a second worker adds little capacity, and the autoscaler's p99 is made "
                      "during the burst, while the second worker starts (a few seconds of CPU to import TensorFlow "
                      "and load the model). It starts in SCHED_IDLE, on CPU the serving worker leaves spare "
                      "(workers/start_priority.py), which narrowed the gap but did not close it. The scaling logic "
                      "itself is exercised by tests/integration/test_autoscaling.py; the worker-seconds column is "
                      "what it saves."]
    lines += ["", "Start-up measurements from `tests/integration/test_autoscaling.py` (last run): "
              + ", ".join(f"{k} = {v} s" for k, v in _start_times().items()), END]
    return "\n".join(lines) + "\n"


def _start_times() -> dict:
    path = ROOT / "bench" / ".work" / "autoscaling.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write(section: str) -> None:
    sections.replace(ROOT / "bench" / "RESULTS.md", section, START, END)


def kept_section(results_md: Path) -> str:
    """This section of an existing RESULTS.md ('' if none)."""
    return sections.kept(results_md, START, END)


def main() -> int:
    from sklearn.datasets import load_digits

    digit = load_digits().images[0].tolist()
    rows = []
    for name, env in CONFIGS.items():
        print(f"autoscaling benchmark: {name} ...", flush=True)
        rows.append(run(name, env, digit))
        print(json.dumps(rows[-1]), flush=True)
    (ROOT / "bench" / ".work").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / ".work" / "autoscale-rows.json").write_text(json.dumps(rows, indent=2))
    write(render(rows))
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
