"""Asked to (INFERQ_NGINX=off), `make run` says so and serves gunicorn directly on the port."""
import requests

from tests.integration.stack import copy_demo_model, start_stack, stop_stack


def test_the_stack_serves_gunicorn_on_the_port_when_nginx_is_turned_off(tmp_path):
    models = tmp_path / "models"
    copy_demo_model(models)
    stack = start_stack(tmp_path, models, {"digits"}, {"INFERQ_NGINX": "off"})
    try:
        assert "nginx: off (INFERQ_NGINX=off)" in stack.log_path.read_text()
        response = requests.get(f"{stack.url}/healthz", timeout=5)
        assert response.status_code == 200 and "nginx" not in response.headers.get("Server", "")
        job = requests.post(f"{stack.url}/v1/models/digits/jobs", headers={"Prefer": "wait=20"}, timeout=30,
                            json={"instances": [[[0] * 8] * 8]}).json()
        assert job["status"] == "succeeded"
    finally:
        assert stop_stack(stack) == 0
