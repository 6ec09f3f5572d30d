"""What the request handlers need, built once per app and reached through ``services()``."""
from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from shared import keys, redis_connection
from shared.job_store import JobStore
from shared.outbox import Outbox
from shared.queue import JobQueue
from shared.replication import Replication
from shared.settings import Settings
from shared.signatures import ModelCatalog
from web.backpressure import RateLimiter
from web.body_turns import BodyTurns
from web.waiter import CompletionWaiter

SIGNATURE_CACHE_S = 2.0
"""How long a web process reuses a model's signatures before re-reading them."""

REDIS_SOCKET_TIMEOUT_S = 5.0
"""A stalled Redis fails a request with 503 after this long instead of hanging it."""

REDIS_POOL_SIZE = 64
"""Most Redis connections one web process opens."""

REDELIVERIES_PER_JOB = (1 / 60, 3)
"""Rate and burst of redeliveries of one job: each one starts a fresh retry chain to a third party."""

REDELIVERIES_PER_KEY = (1.0, 20)
"""Rate and burst of redeliveries one API key may ask for, across its jobs."""


@dataclass
class Services:
    """The settings and Redis-backed collaborators one app instance uses."""

    settings: Settings
    redis: redis.Redis
    store: JobStore
    catalog: ModelCatalog
    queue: JobQueue
    outbox: Outbox
    waiter: CompletionWaiter
    rate_limiter: RateLimiter
    redeliveries_per_job: RateLimiter
    redeliveries_per_key: RateLimiter
    body_turns: BodyTurns


def build_services(settings: Settings, client: redis.Redis | None = None) -> Services:
    """Wire the collaborators; tests pass their own Redis client."""
    subscriber = client
    if client is None or subscriber is None:
        # A bounded, blocking pool: a thousand long-polls waking at once queue for a
        # connection instead of opening a thousand sockets to Redis.
        client = redis_connection.connect(settings, socket_timeout=REDIS_SOCKET_TIMEOUT_S,
                                          max_connections=REDIS_POOL_SIZE, pool_timeout=REDIS_SOCKET_TIMEOUT_S)
        # The pub/sub listener idles between messages, so it must not have a read timeout.
        subscriber = redis_connection.connect(settings, socket_timeout=None)
    assert subscriber is not None
    store = JobStore(client, settings.job_ttl_s)
    return Services(
        settings=settings,
        redis=client,
        store=store,
        catalog=ModelCatalog(client, cache_ttl_s=SIGNATURE_CACHE_S),
        queue=JobQueue(client, store, settings.max_queued_per_model,
                       Replication(client, settings.redis_min_replicas, settings.redis_wait_ms)),
        outbox=Outbox(client, settings.job_ttl_s),
        waiter=CompletionWaiter(subscriber, keys.JOB_FINISHED_CHANNEL),
        rate_limiter=RateLimiter(client, settings.rate_limit_per_key, settings.rate_limit_burst),
        redeliveries_per_job=RateLimiter(client, *REDELIVERIES_PER_JOB, what="redeliveries/s of this job"),
        redeliveries_per_key=RateLimiter(client, *REDELIVERIES_PER_KEY, what="redeliveries/s for this API key"),
        body_turns=BodyTurns(settings.web_heavy_bodies),
    )


def services() -> Services:
    """The current app's services."""
    return current_app.extensions["inferq"]
