"""Optional peer 4, Ray Serve with ``@serve.batch`` (``--peers ray``), measured like the BentoML peer.

The service (``bench.peers.ray_service``) runs from its own virtual environment, bench/.venv-ray
(``make bench-ray-env``): Ray, its TensorFlow and its pins never enter the main venv or ``make test``.
It gets the very request bytes the other peers get (JSON digits, the ``.npy`` image, or the JPEG upload),
so no body is converted for it. Everything Ray opens listens on 127.0.0.1: the Serve proxy by its HTTP
options, Ray's own servers because RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 makes the node address the loopback
(``ray.init(_node_ip_address="127.0.0.1")`` alone is rewritten to the machine's address), the replicas'
gRPC server by ``bench.peers.ray_service.loopback_replica_grpc``, and the dashboard is off.
Ray is stopped through its driver (SIGTERM: ``ray.shutdown()``), then whatever is left of the session it was
started in is killed by process id: ``ray stop --force`` would kill every Ray process of the machine by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.measure import WORK, loadgen, log
from tests.integration.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "bench" / ".venv-ray"
CONCURRENCY = (1, 8, 32, 64)
READY_S = 180
"""Two replicas importing TensorFlow and loading both models take 10-20 s here; a loaded machine more."""
SOCKET_TAIL = len("/session_2026-01-01_00-00-00_000000_4194304/sockets/plasma_store")
"""What Ray appends to its temp dir for its unix sockets, whose paths must stay under 108 bytes."""


def ray_temp_dir() -> tuple[Path, bool]:
    """Ray's root temp dir, and whether it is a scratch one to remove afterwards.

    bench/.work/ray keeps the logs of the last run for a look after a failure; from a checkout whose path
    is too long for Ray's socket paths, a short fresh directory under the system temp dir is used instead.
    """
    kept = WORK / "ray"
    if len(str(kept)) + SOCKET_TAIL < 108:
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        return kept, False
    return Path(tempfile.mkdtemp(prefix="ray-")), True


def environment(repo: Path) -> dict[str, str]:
    """The peer's environment: no INFERQ_* settings, the models, Ray on the loopback and without usage stats."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env.update(PEER_MODELS_DIR=str(repo), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT),
               RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0")
    return env


def wait_ready(proc: subprocess.Popen, url: str) -> bool:
    """True once a replica answers 200 on /readyz: the proxy alone answers other codes before that."""
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def session_pids(sid: int) -> list[int]:
    """The processes still in session ``sid``: the driver started with a new session, and every Ray process
    (GCS, raylet, agents, actors in their own process groups) stays in it."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                pids.append(int(entry.name))
        except (OSError, IndexError, ValueError):  # the process ended meanwhile
            continue
    return pids


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the driver, which shuts its Ray down; then SIGKILL to anything left of its session."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 10
    while (left := session_pids(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


@contextmanager
def ray_server(repo: Path) -> Iterator[str | None]:
    """Ray Serve serving both models from its own environment: its URL once a replica answers, or
    None when it is not installed or did not become ready; stopped, every process of it, after."""
    if not (VENV / "bin" / "python").exists():
        log("Ray Serve is not installed: make bench-ray-env (its own virtual environment)")
        yield None
        return
    port, (temp, scratch) = free_port(), ray_temp_dir()
    url = f"http://127.0.0.1:{port}"
    command = [str(VENV / "bin" / "python"), "-m", "bench.peers.ray_service", "--port", str(port), "--temp-dir", str(temp)]
    with (WORK / "peer-ray.log").open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=environment(repo), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        started = time.monotonic()
        if not wait_ready(proc, url):
            log(f"Ray Serve did not become ready in {READY_S} s: see bench/.work/peer-ray.log")
            yield None
            return
        log(f"Ray Serve ready in {time.monotonic() - started:.0f} s")
        yield url
    finally:
        stop(proc)
        if scratch:
            shutil.rmtree(temp, ignore_errors=True)


def run_ray(repo: Path, loads: list[tuple[str, Path, int]], duration: float) -> list[dict]:
    """Ray Serve on each (model, payload, instances) at 1, 8, 32 and 64 requests in flight, after a warm-up."""
    with ray_server(repo) as url:
        if url is None:
            return []
        for model, payload, n in loads:  # the first requests of each replica trace the models
            loadgen(url, "sync", model, payload, n, 1, 2)
        return [dict(loadgen(url, "sync", model, payload, n, c, duration), system="ray")
                for model, payload, n in loads for c in CONCURRENCY]
