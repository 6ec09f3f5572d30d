"""The nginx configuration `make run` renders passes `nginx -t`, with and without the
separate health/metrics listener, and carries the hardening the README promises."""
import subprocess

import pytest

from launcher import configs as launcher
from shared.settings import Settings
from tests.conftest import server_binary


@pytest.mark.parametrize("ops_listen", ["", "127.0.0.1:9101"])
def test_the_rendered_nginx_conf_is_valid_and_hardened(tmp_path, ops_listen):
    nginx = server_binary("nginx")
    for sub in ("logs", "nginx/tmp"):
        (tmp_path / sub).mkdir(parents=True)
    conf = launcher.write_nginx_conf(Settings(ops_listen=ops_listen), tmp_path)
    text = conf.read_text()
    result = subprocess.run([nginx, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for directive in ("server_tokens off", "limit_req zone=inferq_per_client", "client_max_body_size",
                      "client_body_timeout", "error_page 429", "add_header Allow"):
        assert directive in text
    assert (f"listen {ops_listen};" in text) == bool(ops_listen)
