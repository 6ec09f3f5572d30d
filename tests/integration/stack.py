"""Starts the real stack (launcher/stack.py: redis-server, Celery workers, gunicorn, nginx)
on free ports in a temporary folder, and stops it again."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    """A running stack: its nginx URL, the gunicorn URL behind it, and its folders."""

    url: str
    web_url: str
    data_dir: Path
    models_dir: Path
    env: dict
    process: subprocess.Popen
    log_path: Path

    def supervisorctl(self, *args: str) -> str:
        conf = self.data_dir / "supervisord.conf"
        result = subprocess.run([str(Path(sys.executable).parent / "supervisorctl"), "-c", str(conf), *args],
                                capture_output=True, text=True, timeout=60)
        return result.stdout

    def program_pid(self, name: str) -> int:
        return int(self.supervisorctl("pid", name).strip())

    def redis_url(self) -> str:
        password = (self.data_dir / "redis.password").read_text().strip()
        return f"redis://:{password}@127.0.0.1:{self.env['INFERQ_LOCAL_REDIS_PORT']}/0"

    def logs(self) -> str:
        parts = [self.log_path.read_text(errors="replace")]
        for log in sorted((self.data_dir / "logs").glob("*.log")):
            parts.append(f"==> {log.name}\n" + log.read_text(errors="replace")[-4000:])
        return "\n".join(parts)


SERVER_CHOICES = ("INFERQ_NGINX", "INFERQ_REDIS_SERVER")
"""Settings a test run passes on to its stacks: which nginx and Redis binaries they start."""


def start_stack(base: Path, models_dir: Path, expect_models: set[str], extra_env: dict | None = None,
                code: Path = ROOT, api_key: str | None = None) -> Stack:
    """Launch launcher/stack.py (from the checkout at ``code``: benchmarks compare two commits)
    and wait until every expected model is published (asking with ``api_key`` when keys are on)."""
    port, web_port, redis_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_") or k in SERVER_CHOICES}
    env.update({
        "INFERQ_PORT": str(port),
        "INFERQ_WEB_BIND": f"127.0.0.1:{web_port}",
        "INFERQ_LOCAL_REDIS_PORT": str(redis_port),
        "INFERQ_DATA_DIR": str(base / "data"),
        "INFERQ_MODELS_DIR": str(models_dir),
        "INFERQ_WEB_WORKERS": "2",
        # Fixed worker processes: these tests address them by name (the autoscaler has its own).
        "INFERQ_AUTOSCALE": "false",
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    })
    env.update(extra_env or {})
    log_path = base / "stack.log"
    process = subprocess.Popen([sys.executable, "-m", "launcher"], cwd=code, env=env,
                               stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    stack = Stack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", base / "data", models_dir,
                  env, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("stack exited early:\n" + stack.logs())
        try:
            listed = requests.get(stack.url + "/v1/models", timeout=2,
                                  headers={"Authorization": f"Bearer {api_key}"} if api_key else {}).json()["models"]
            if expect_models <= {m["name"] for m in listed if m.get("state") == "ready"}:
                return stack
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.5)
    stop_stack(stack)
    raise RuntimeError("stack did not become ready:\n" + stack.logs())


def stop_stack(stack: Stack) -> int:
    """SIGTERM the launcher (as Ctrl-C would) and wait for everything to exit."""
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
        try:
            return stack.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            stack.process.kill()
            raise
    return stack.process.returncode


def copy_demo_model(models_dir: Path) -> None:
    shutil.copytree(ROOT / "models" / "digits", models_dir / "digits")
