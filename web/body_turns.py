"""Turns for big bodies: at most a few requests per web process hold a body over 1 MiB at once.

A gevent worker runs thousands of requests in one process. Each reads its body while the
others wait on I/O, so without turns a burst of 32 MiB uploads multiplies into gigabytes of
bodies and parsed values held side by side. Parsing and decoding are CPU work that holds the
process anyway, so waiting for a turn costs a big request little, and small ones never wait.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shared.errors import Unavailable

HEAVY_BODY_BYTES = 1 << 20
"""Bodies above this size (or of unknown size) need a turn."""

TURN_WAIT_S = 10.0
"""How long a big request waits for a turn before it is answered 503 with ``Retry-After``."""


class BodyTurns:
    """A per-process semaphore over requests whose bodies are big or of unknown size."""

    def __init__(self, turns: int):
        # Created inside the worker, after gevent has patched threading: a greenlet waits, not the process.
        self._turns = threading.BoundedSemaphore(max(1, turns))

    @contextmanager
    def turn(self, content_length: int | None) -> Iterator[None]:
        """Hold a turn while the body is read and decoded (a no-op for a small body)."""
        if content_length is not None and content_length <= HEAVY_BODY_BYTES:
            yield
            return
        if not self._turns.acquire(timeout=TURN_WAIT_S):
            raise Unavailable(f"this web process is already decoding its share of bodies over "
                              f"{HEAVY_BODY_BYTES} bytes; retry shortly", retry_after=1)
        try:
            yield
        finally:
            self._turns.release()
