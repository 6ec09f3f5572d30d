"""Without nginx installed, `make run` says how to install it and serves gunicorn directly."""
import sys
from pathlib import Path

import requests

from tests.integration.stack import copy_demo_model, start_stack, stop_stack


def test_the_stack_serves_gunicorn_on_the_port_when_nginx_is_missing(tmp_path):
    models = tmp_path / "models"
    copy_demo_model(models)
    # nginx lives in /usr/sbin on Debian; redis-server stays reachable in /usr/bin.
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    stack = start_stack(tmp_path, models, {"digits"}, {"PATH": path})
    try:
        assert "apt-get install nginx" in stack.log_path.read_text()
        response = requests.get(f"{stack.url}/healthz", timeout=5)
        assert response.status_code == 200 and "nginx" not in response.headers.get("Server", "")
        job = requests.post(f"{stack.url}/v1/models/digits/jobs", headers={"Prefer": "wait=20"}, timeout=30,
                            json={"instances": [[[0] * 8] * 8]}).json()
        assert job["status"] == "succeeded"
    finally:
        assert stop_stack(stack) == 0
