"""``make bench``: inferq end to end against the raw model limit and two baseline peers.

Everything is measured in one run on this machine, so the ratios compare like with like:
1. the raw limit of each model in-process (``bench.raw``);
2. inferq through nginx at 1, 8, 32 and 64 jobs in flight (``bench.loadgen``);
3. the naive synchronous peer and the tutorial Celery peer, through the same load generator;
4. optionally BentoML and Ray Serve (``--peers bentoml,ray``, each from its own virtual environment).

Every peer gets the same bytes on the wire as inferq: the same JSON for digits; for MobileNetV2
the same JPEG upload where the peer reads images, and ``.npy`` as each side's binary form.
It writes ``bench/RESULTS.md`` and ``bench/results.png``. Load goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import models as bench_models  # noqa: E402
from bench import report  # noqa: E402
from bench.bodies import payloads  # noqa: E402
from bench.measure import WORK, loadgen, log, publish_costs, raw_limits  # noqa: E402
from bench.ray_peer import run_ray  # noqa: E402
from tests.integration.stack import free_port, start_stack, stop_stack  # noqa: E402

CONCURRENCY = (1, 8, 32, 64)
BIN = Path(sys.executable).parent


def worker_rss_mib(stack, program: str) -> float:
    pid = int(stack.supervisorctl("pid", program).split()[0])
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def long_poll_capacity(repo, env, clients: int = 1000) -> dict:
    """``clients`` simultaneous long-polls on queued jobs, released by starting the worker."""
    import asyncio

    from bench import longpoll

    base = WORK / "stack-longpoll"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    shutil.copytree(repo / "digits", base / "models" / "digits")
    stack = start_stack(base, base / "models", {"digits"}, env)
    try:
        stack.supervisorctl("stop", "worker-digits")
        result = asyncio.run(longpoll.run(stack.url, clients, lambda: stack.supervisorctl("start", "worker-digits")))
    finally:
        stop_stack(stack)
    log(f"long-poll capacity: {result}")
    return result


def run_inferq(model, repo, env, cases, duration, label="inferq") -> tuple[list[dict], float]:
    """Start the stack for one model, run each (flow, payload, instances, concurrency) case, stop it."""
    base = WORK / f"stack-{label}-{model}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    models_dir = base / "models"
    shutil.copytree(repo / model, models_dir / model)
    stack = start_stack(base, models_dir, {model}, env)
    try:
        if int(env.get("INFERQ_WORKERS_PER_MODEL", "1")) > 1:
            wait_for_workers(stack, model, int(env["INFERQ_WORKERS_PER_MODEL"]))
        results = [dict(loadgen(stack.url, flow, model, payload, n, c, duration), system=label)
                   for flow, payload, n, c in cases]
        program = f"worker-{model}" if env.get("INFERQ_WORKERS_PER_MODEL", "1") == "1" \
            else f"worker-{model}:worker-{model}-0"
        rss = worker_rss_mib(stack, program)
    finally:
        stop_stack(stack)
    return results, rss


def wait_for_workers(stack, model: str, count: int, timeout_s: float = 180) -> None:
    """Block until ``count`` workers serve ``model``. The stack is ready with one; a second loads
    on spare CPU only (workers/inference/start_priority.py), so measuring at once would count
    one worker's throughput for two's."""
    import redis

    from shared.signatures import ModelCatalog

    catalog = ModelCatalog(redis.Redis.from_url(stack.redis_url()))
    deadline = time.monotonic() + timeout_s
    while catalog.live_workers(model) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"{count} workers of {model} did not start within {timeout_s:.0f} s")
        time.sleep(0.5)


class Peer:
    """A baseline started as plain processes; stopped with SIGTERM."""

    def __init__(self, commands: list[list[str]], env: dict, url: str, ready_path: str | None):
        self.logs = [(WORK / f"peer-{i}-{Path(c[0]).name}.log").open("w") for i, c in enumerate(commands)]
        self.procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                       start_new_session=True) for c, f in zip(commands, self.logs, strict=True)]
        self.url = url
        deadline = time.monotonic() + 180
        while ready_path and time.monotonic() < deadline:
            try:
                requests.get(url + ready_path, timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.5)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def run_peer(name, repo, loads, duration) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env.update(PEER_MODELS_DIR=str(repo), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if name == "naive":
        peer = Peer([[str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "120",
                      "bench.peers.naive_sync:app"]], env, url, "/")
        flow = "sync"
    elif name == "tutorial":
        redis_port = free_port()
        env["PEER_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        peer = Peer([["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no"],
                     [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "bench.peers.tutorial_celery:app"],
                     [str(BIN / "celery"), "-A", "bench.peers.tutorial_celery:celery", "worker", "-c", "2",
                      "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]], env, url, "/")
        flow = "poll"
    elif name == "bentoml":
        return run_bentoml(repo, loads, duration)
    elif name == "ray":
        return run_ray(repo, loads, duration)
    else:
        raise SystemExit(f"unknown peer {name}")
    try:
        for model, payload, n in loads:  # first request of each model warms the peer up
            loadgen(url, flow, model, payload, n, 1, 2)
        return [dict(loadgen(url, flow, model, payload, n, c, duration), system=name)
                for model, payload, n in loads for c in CONCURRENCY]
    finally:
        peer.stop()


@contextmanager
def bentoml_server(repo) -> Iterator[str | None]:
    """BentoML serving both models from its own environment: its URL, or None when not installed."""
    venv = ROOT / "bench" / ".venv-bentoml"
    if not (venv / "bin" / "bentoml").exists():
        log("BentoML is not installed: make bench-bentoml-env (its own virtual environment)")
        yield None
        return
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env.update(PEER_MODELS_DIR=str(repo), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    url = f"http://127.0.0.1:{port}"
    peer = Peer([[str(venv / "bin" / "bentoml"), "serve", "bench.peers.bentoml_service:Inference",
                  "--port", str(port), "--host", "127.0.0.1"]], env, url, "/readyz")
    try:
        yield url
    finally:
        peer.stop()


def run_bentoml(repo, loads, duration) -> list[dict]:
    with bentoml_server(repo) as url:
        if url is None:
            return []
        for model, payload, n in loads:
            loadgen(url, "sync", model, payload, n, 1, 2)
        return [dict(loadgen(url, "sync", model, payload, n, c, duration), system="bentoml")
                for model, payload, n in loads for c in CONCURRENCY]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    import tensorflow as tf

    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}, {platform.system()} {platform.release()}")


def parse_args() -> argparse.Namespace:
    """Seconds measured per point, the peers to run and seconds per raw batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per point")
    parser.add_argument("--peers", default="naive,tutorial", help="comma list: naive,tutorial,bentoml,ray")
    parser.add_argument("--raw-seconds", type=float, default=3.0)
    return parser.parse_args()


def run_inferq_variants(repo, bodies, common, digits_batch, mobilenet_batch, duration) -> tuple[list[dict], float]:
    """inferq on each model, then digits on gthread web workers and on prefork consumption; the MobileNetV2 worker's RSS."""
    results = []
    log("inferq digits")
    digits_cases = [("inferq", bodies["digits"][0], 1, c) for c in CONCURRENCY] + \
        [("inferq-get", bodies["digits"][0], 1, 32), ("inferq", bodies["digits100"][0], 100, 8)]
    found, _ = run_inferq("digits", repo, {**common, "INFERQ_MAX_BATCH_SIZE": str(digits_batch),
                                           "INFERQ_TF_INTRA_OP_THREADS": "1"}, digits_cases, duration)
    results += found
    log("inferq mobilenet")
    # Two single-threaded workers beat one two-threaded worker on two cores.
    mobilenet_cases = [("inferq", bodies[body][0], 1, c) for body in ("mobilenet", "mobilenet-jpeg") for c in CONCURRENCY]
    found, rss = run_inferq("mobilenet", repo, {**common, "INFERQ_MAX_BATCH_SIZE": str(mobilenet_batch),
                                                "INFERQ_TF_INTRA_OP_THREADS": "1",
                                                "INFERQ_WORKERS_PER_MODEL": "2"}, mobilenet_cases, duration)
    results += found
    log("inferq digits with gunicorn gthread workers, for comparison")
    found, _ = run_inferq("digits", repo, {**common, "INFERQ_WEB_WORKER_CLASS": "gthread",
                                           "INFERQ_MAX_BATCH_SIZE": str(digits_batch)},
                          [("inferq", bodies["digits"][0], 1, 64)], duration, label="inferq-gthread")
    results += found
    log("inferq digits with stock Celery prefork consumption (one job per task), for comparison")
    found, _ = run_inferq("digits", repo, {**common, "INFERQ_WORKER_MODE": "prefork",
                                           "INFERQ_WORKER_CONCURRENCY": "2"},
                          [("inferq", bodies["digits"][0], 1, 32)], duration, label="inferq-prefork")
    results += found
    return results, rss


PEER_BODIES = {"naive": ("mobilenet",), "tutorial": ("mobilenet",), "bentoml": ("mobilenet-jpeg",),
               "ray": ("mobilenet-jpeg", "mobilenet")}
"""The MobileNetV2 bodies each peer takes, as inferq does: the same JPEG upload for the peers that read
images, and each side's best binary form (``.npy`` where it reads one; BentoML reads none). Digits
are the same JSON everywhere."""


def run_peers(peers: str, repo, bodies, duration) -> list[dict]:
    """Each peer of the --peers list in turn, on one digit and one image per job."""
    results = []
    for peer in filter(None, peers.split(",")):
        loads = [("digits", bodies["digits"][0], 1), *(("mobilenet", bodies[b][0], 1) for b in PEER_BODIES[peer])]
        log(f"peer {peer}")
        results += run_peer(peer, repo, loads, duration)
    return results


def save(peers: str, raw, results, memory, publish, capacity) -> None:
    """Keep the measurements in .work/results.json, then write RESULTS.md and results.png from them."""
    extra = [p for p in peers.split(",") if p and p not in ("naive", "tutorial")]
    command = "make bench" + (f" PEERS={','.join(extra)}" if extra else "")
    (WORK / "results.json").write_text(json.dumps({"raw": raw, "runs": results, "memory": memory,
                                                   "publish": publish, "long_poll": capacity}, indent=1))
    report.write(ROOT / "bench", raw, results, memory, publish, capacity, machine(), command)
    log("wrote bench/RESULTS.md and bench/results.png")


def main() -> None:
    args = parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    repo = WORK / "models"
    paths = bench_models.build(repo)
    bodies = payloads()
    digits_batch = 64
    raw = raw_limits(paths, digits_batch, args.raw_seconds)
    mobilenet_batch = int(raw["mobilenet"]["best_batch"])

    publish = publish_costs()
    common = {"INFERQ_REDIS_APPENDFSYNC": "always", "INFERQ_WEB_WORKERS": "2"}
    results, rss = run_inferq_variants(repo, bodies, common, digits_batch, mobilenet_batch, args.duration)

    capacity = long_poll_capacity(repo, common)

    results += run_peers(args.peers, repo, bodies, args.duration)

    memory = {"worker_rss_mib": rss, "bare_rss_mib": raw["mobilenet"]["bare_rss_mib"], "batch": mobilenet_batch}
    save(args.peers, raw, results, memory, publish, capacity)


if __name__ == "__main__":
    main()
