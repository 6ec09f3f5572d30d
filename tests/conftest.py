"""Makes the client package importable in tests without installing it; fixtures both the
integration and the fault suites use."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "client"))


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 that records every delivery."""
    from tests.integration.receiver import Receiver

    running = Receiver()
    yield running
    running.close()
