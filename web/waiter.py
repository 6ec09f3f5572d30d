"""Long-poll support: block a request until its job ends, without polling Redis in a loop.

Each web process holds one pub/sub subscription to the job-finished channel and wakes the
request threads waiting for that job. A finish announces the job as ``GET`` would show it
(``<id>\n<json>``), so the woken request answers without reading it back; a bare ``<id>``
(a job too big to announce) sends it to Redis as before. A slow re-check guards against
missed messages (for example while the subscription reconnects).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from redis.sentinel import SentinelConnectionPool

log = logging.getLogger(__name__)

RECHECK_INTERVAL_S = 1.0
"""How often a waiter re-reads the job status in case a notification was missed."""

SUBSCRIBE_GRACE_S = 1.0
"""How long a first waiter lets the subscription come up before relying on re-checks."""


@dataclass(eq=False)
class Watch:
    """One request waiting for one job: set when the job ends, with its announced JSON if any."""

    event: threading.Event = field(default_factory=threading.Event)
    announced: bytes | None = None


def _done_unless_unreachable(is_done: Callable[[], bool]) -> bool:
    """``is_done()``, or False while Redis cannot be reached (a failover in progress): a parked
    long-poll keeps waiting and asks again, and only its last look may fail the request."""
    try:
        return is_done()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.info("long-poll re-check failed (%s); waiting on", exc)
        return False


PRIMARY_CHECK_S = 2.0
"""How often the listener checks, with Sentinel, that its connection still reaches the primary."""


class CompletionWaiter:
    """Fans one Redis subscription out to any number of waiting request threads."""

    def __init__(self, client: redis.Redis, channel: str):
        self.client = client
        self.channel = channel
        self._lock = threading.Lock()
        self._watches: dict[str, set[Watch]] = {}
        self._subscribed = threading.Event()
        self._owner_pid: int | None = None

    @contextmanager
    def watching(self, job_id: str) -> Iterator[Watch]:
        """A watch set when ``job_id`` finishes; register before the job can finish."""
        self._ensure_listener()
        watch = Watch()
        with self._lock:
            self._watches.setdefault(job_id, set()).add(watch)
        try:
            yield watch
        finally:
            with self._lock:
                waiting = self._watches.get(job_id)
                if waiting is not None:
                    waiting.discard(watch)
                    if not waiting:
                        del self._watches[job_id]

    def wait_on(self, watch: Watch, timeout_s: float, is_done: Callable[[], bool],
                check_first: bool = True) -> bool:
        """Wait for ``watch`` (re-checking ``is_done`` now and then); True once done.

        ``check_first=False`` skips the first status read when the watch was registered
        before the job was even queued, so no completion can have been missed.
        """
        deadline = time.monotonic() + timeout_s
        check = check_first
        while True:
            if check and _done_unless_unreachable(is_done):
                return True
            check = True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return is_done()
            if watch.event.wait(min(remaining, RECHECK_INTERVAL_S)):
                return True
            watch.event.clear()

    def _ensure_listener(self) -> None:
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._owner_pid = os.getpid()
            self._subscribed.clear()
            threading.Thread(target=self._listen_forever, name="job-finished-listener",
                             daemon=True).start()
        self._subscribed.wait(SUBSCRIBE_GRACE_S)

    def _listen_forever(self) -> None:
        while True:
            try:
                self._listen()
            except Exception as exc:  # waiters fall back to re-checking meanwhile
                log.warning("job-finished subscription lost (%s); reconnecting", exc)
            self._subscribed.clear()
            time.sleep(0.5)

    def _listen(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            checked = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=1.0)
                self._subscribed.set()
                if time.monotonic() - checked > PRIMARY_CHECK_S:
                    checked = time.monotonic()
                    _check_primary(self.client, pubsub)
                if message is None or message["type"] != "message":
                    continue
                job_id, _, announced = message["data"].partition(b"\n")
                with self._lock:
                    for watch in self._watches.get(job_id.decode(), ()):
                        watch.announced = announced or None
                        watch.event.set()
        finally:
            pubsub.close()


def _check_primary(client: redis.Redis, pubsub) -> None:
    """Raise when, with Sentinel, the subscription's node is no longer the primary.

    A frozen primary neither answers nor closes the socket, so the subscription would stay on
    it through a failover; re-subscribing reaches the node Sentinel names now.
    """
    pool = client.connection_pool
    connection = pubsub.connection
    if not isinstance(pool, SentinelConnectionPool) or connection is None:
        return
    primary = pool.get_master_address()
    if (connection.host, connection.port) != tuple(primary):
        raise redis.ConnectionError(f"the primary moved to {primary[0]}:{primary[1]}")
