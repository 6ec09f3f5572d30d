"""Makes the client package importable in tests without installing it; fixtures both the
integration and the fault suites use."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))

SUITE_MARKERS = ("integration", "faults")
"""Folders under tests/ whose tests carry the marker of the same name (see pytest.ini)."""


def pytest_collection_modifyitems(items):
    for item in items:
        for suite in SUITE_MARKERS:
            if f"tests/{suite}/" in str(item.fspath):
                item.add_marker(getattr(pytest.mark, suite))


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that records every delivery."""
    from tests.integration.receiver import Receiver

    running = Receiver()
    yield running
    running.close()
