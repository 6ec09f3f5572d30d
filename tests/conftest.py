"""Makes the client package importable in tests without installing it; fixtures both the
integration and the fault suites use."""
import os
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# Property tests keep no example database: a test run must leave the tree as it found it.
hypothesis_settings.register_profile("inferq", database=None, print_blob=True)
hypothesis_settings.load_profile("inferq")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))

SUITE_MARKERS = ("integration", "faults")
"""Folders under tests/ whose tests carry the marker of the same name (see pytest.ini)."""


def pytest_collection_modifyitems(items):
    for item in items:
        for suite in SUITE_MARKERS:
            if f"tests/{suite}/" in str(item.fspath):
                item.add_marker(getattr(pytest.mark, suite))


def require_tool(command: str, package: str) -> str:
    """The path of ``command``; without it the test is skipped with one line naming the Debian
    package (``make test`` installs it when it runs as root on Debian). In CI it fails instead:
    CI must run every test."""
    found = shutil.which(command)
    if found is None:
        message = f"{command} is missing: apt-get install {package} (make test does this as root on Debian)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def server_binary(name: str) -> str:
    """The ``nginx`` or ``redis-server`` the stack would start (system's, else the bundled one),
    honouring ``INFERQ_NGINX`` / ``INFERQ_REDIS_SERVER``."""
    from launcher import binaries
    from shared.settings import Settings

    settings = Settings.from_env()
    server = binaries.find(name, settings.nginx if name == "nginx" else settings.redis_server)
    assert server is not None, f"{name} is turned off"
    return server.path


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that records every delivery."""
    from tests.integration.receiver import Receiver

    running = Receiver()
    yield running
    running.close()
