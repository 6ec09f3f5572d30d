"""How every process reaches Redis: one URL, or the primary that Redis Sentinel names.

With ``INFERQ_REDIS_SENTINELS`` set, clients ask the Sentinels for the current primary on
every new connection, and redis-py's Sentinel-managed connections drop themselves when the
node they reach turns out to be a replica (a failed-over primary that came back). So a
process follows a failover without a restart: its next command reconnects to the new primary.

Without it, clients connect to ``INFERQ_REDIS_URL`` exactly as before. Web, workers, the
webhook worker and the autoscaler all call ``connect``; Celery's transport gets the same
target from ``celery_broker``.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from shared.settings import Settings

SENTINEL_SOCKET_TIMEOUT_S = 1.0
"""How long a Sentinel may take to name the primary before the next Sentinel is asked."""

FAILOVER_RETRY = (0.05, 0.5, 2)
"""Backoff base, cap (seconds) and retries of a command that met a dropped connection: after a
failover every pooled connection to the old primary fails once, and a retry reaches the new one."""

CELERY_HEALTH_CHECK_S = 4
"""Seconds between Celery's checks that its broker connection still answers (kombu's default: 25)."""


@dataclass(frozen=True)
class SentinelTarget:
    """The Sentinels to ask and the master name they watch."""

    addresses: tuple[tuple[str, int], ...]
    master: str
    password: str | None


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """``host:port,host:port`` as address pairs; a malformed entry is a ValueError at start-up."""
    addresses = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"INFERQ_REDIS_SENTINELS: {entry!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return tuple(addresses)


def sentinel_target(settings: Settings) -> SentinelTarget | None:
    """The Sentinel configuration, or None when processes connect to ``INFERQ_REDIS_URL``."""
    addresses = parse_sentinels(settings.redis_sentinels)
    if not addresses:
        return None
    return SentinelTarget(addresses, settings.redis_sentinel_master, settings.redis_sentinel_password or None)


def data_password(settings: Settings) -> str | None:
    """The data nodes' password: ``INFERQ_REDIS_PASSWORD``, else the one in ``INFERQ_REDIS_URL``."""
    if settings.redis_password:
        return settings.redis_password
    password = urlsplit(settings.redis_url).password
    return unquote(password) if password else None


def _database(settings: Settings) -> int:
    path = urlsplit(settings.redis_url).path.strip("/")
    return int(path) if path.isdigit() else 0


def connect(settings: Settings, *, socket_timeout: float | None = 5.0, connect_timeout: float = 2.0,
            max_connections: int | None = None, pool_timeout: float | None = None,
            health_check_interval: int = 30) -> redis.Redis:
    """A client of the current primary.

    ``max_connections`` with ``pool_timeout`` makes the pool blocking: callers queue for a
    connection rather than opening one each. ``socket_timeout=None`` suits a pub/sub listener,
    which idles between messages.
    """
    options: dict = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout,
                     "health_check_interval": health_check_interval}
    target = sentinel_target(settings)
    if target is None:
        if max_connections is None:
            return redis.Redis.from_url(settings.redis_url, **options)
        pool = redis.BlockingConnectionPool.from_url(settings.redis_url, max_connections=max_connections,
                                                     timeout=pool_timeout, **options)
        return redis.Redis(connection_pool=pool)
    sentinel = sentinels(settings, target)
    options.update(password=data_password(settings), db=_database(settings),
                   retry=Retry(ExponentialBackoff(cap=FAILOVER_RETRY[1], base=FAILOVER_RETRY[0]),
                               FAILOVER_RETRY[2]))
    if max_connections is not None:
        options.update(connection_pool_class=BlockingSentinelPool, max_connections=max_connections,
                       timeout=pool_timeout)
    return sentinel.master_for(target.master, redis_class=redis.Redis, **options)


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """A Sentinel-managed pool that, when all its connections are out, makes the caller wait
    for one (as the web's pool does without Sentinel) instead of failing."""


def sentinels(settings: Settings, target: SentinelTarget | None = None) -> Sentinel:
    """A client of the Sentinels themselves (for the master's address and its replicas)."""
    target = target or sentinel_target(settings)
    if target is None:
        raise ValueError("INFERQ_REDIS_SENTINELS is not set")
    return Sentinel(list(target.addresses), socket_timeout=SENTINEL_SOCKET_TIMEOUT_S,
                    sentinel_kwargs={"password": target.password, "socket_timeout": SENTINEL_SOCKET_TIMEOUT_S,
                                     "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT_S})


def celery_broker(settings: Settings) -> tuple[str, dict]:
    """Celery's broker URL and the transport options that point it at the same Redis."""
    target = sentinel_target(settings)
    if target is None:
        return settings.redis_url, {}
    password = data_password(settings)
    auth = f":{quote(password, safe='')}@" if password else ""
    url = ";".join(f"sentinel://{auth}{host}:{port}/{_database(settings)}" for host, port in target.addresses)
    # Kombu drops a consumer connection whose BRPOP reply is this overdue: a frozen primary
    # never closes its sockets, and the health check is what moves the consumer on.
    options: dict = {"master_name": target.master, "socket_timeout": 5.0, "socket_connect_timeout": 2.0,
                     "health_check_interval": CELERY_HEALTH_CHECK_S}
    options["sentinel_kwargs"] = {"password": target.password, "socket_timeout": SENTINEL_SOCKET_TIMEOUT_S}
    return url, options
