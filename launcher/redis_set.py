"""The Redis that ``make run`` starts: one node, or a primary, replicas and three Sentinels.

With ``INFERQ_LOCAL_REDIS_REPLICAS=N`` it writes configs for a primary on
``INFERQ_LOCAL_REDIS_PORT``, N replicas on the next ports and three Sentinels from
``INFERQ_LOCAL_SENTINEL_PORT`` (master name ``inferq``, quorum 2), all on loopback, all with
AOF and the one password in ``redis.password``. The rest of the stack is then configured
through the Sentinels, with ``INFERQ_REDIS_MIN_REPLICAS=1`` unless it is set.

The set's configs are written once and then left to the nodes and Sentinels, which rewrite
them on a failover (``CONFIG REWRITE``): a restart of ``make run`` must keep whichever node is
primary now, or it would hand the primary's role back to a node with older data. Changing the
set's ports or size writes them afresh.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from shared.settings import Settings

SENTINELS = 3
QUORUM = 2
MASTER_NAME = "inferq"

DOWN_AFTER_MS = 3000
"""How long the primary must be silent before a Sentinel calls it down: short enough that
submits recover within seconds, long enough that one slow fsync is not a failover."""

REPLICA_APPENDFSYNC = "everysec"
"""A replica's AOF fsync policy. ``WAIT`` counts a write once a replica has applied it in memory,
not once it is on the replica's disk, so fsyncing each write there would buy the confirmation
nothing; it would only cost every write a second and third fsync on the same disks. The primary
keeps ``INFERQ_REDIS_APPENDFSYNC`` (``always``)."""

FAILOVER_TIMEOUT_MS = 10000
"""How long a failover may take before another Sentinel tries again."""


@dataclass
class LocalRedis:
    """What the launcher starts for Redis and how the other processes reach it."""

    url: str
    password: str
    nodes: dict[str, Path] = field(default_factory=dict)
    """supervisord program name -> redis-server config (``redis`` is the first primary)."""
    sentinels: dict[str, Path] = field(default_factory=dict)
    """supervisord program name -> Sentinel config."""
    sentinel_addresses: str = ""

    def environment(self, settings: Settings, min_replicas_given: bool) -> dict[str, str]:
        """Settings the stack's processes get (as ``name -> value``)."""
        env = {"redis_url": self.url}
        if self.sentinels:
            env.update(redis_sentinels=self.sentinel_addresses, redis_sentinel_master=MASTER_NAME,
                       redis_sentinel_password=self.password)
            if not min_replicas_given:
                env["redis_min_replicas"] = "1"
        return env


def password(data: Path) -> str:
    """The one password of every node (and Sentinel), generated into the data folder once."""
    password_file = data / "redis.password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(24))
        password_file.chmod(0o600)
    return password_file.read_text().strip()


def node_conf(settings: Settings, port: int, folder: Path, secret: str, primary_port: int | None,
              replicated: bool = True) -> str:
    """One data node's config; ``primary_port`` makes it a replica of that port. In a replicated
    set every node can authenticate to a primary, since any of them may become a replica."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "bind 127.0.0.1 -::1",
        f"port {port}",
        f"dir {folder}",
        "appendonly yes",
        f"appendfsync {settings.redis_appendfsync if primary_port is None else REPLICA_APPENDFSYNC}",
        'save ""',
        f"requirepass {secret}",
        *([f"masterauth {secret}"] if replicated else []),
        f"maxmemory {settings.redis_maxmemory}",
        "maxmemory-policy noeviction",
        "protected-mode yes",
        "daemonize no",
    ]
    if primary_port is not None:
        lines.append(f"replicaof 127.0.0.1 {primary_port}")
    return "\n".join(lines) + "\n"


def sentinel_conf(port: int, folder: Path, secret: str, primary_port: int) -> str:
    """One Sentinel's config: watches the primary under ``MASTER_NAME`` with quorum ``QUORUM``."""
    folder.mkdir(parents=True, exist_ok=True)
    return "\n".join([
        "bind 127.0.0.1",
        f"port {port}",
        f"dir {folder}",
        "protected-mode yes",
        "daemonize no",
        f"requirepass {secret}",
        f"sentinel sentinel-pass {secret}",
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} {QUORUM}",
        f"sentinel auth-pass {MASTER_NAME} {secret}",
        f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
        f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
        f"sentinel parallel-syncs {MASTER_NAME} 1",
        "",
    ])


def local_redis(settings: Settings, data: Path) -> LocalRedis:
    """Write the configs of the Redis ``make run`` starts and say how to reach it."""
    secret = password(data)
    primary = settings.local_redis_port
    url = f"redis://:{secret}@127.0.0.1:{primary}/0"
    if settings.local_redis_replicas <= 0:
        conf = data / "redis.conf"
        conf.write_text(node_conf(settings, primary, data / "redis", secret, None, replicated=False))
        conf.chmod(0o600)
        return LocalRedis(url, secret, {"redis": conf})
    return _replicated(settings, data, secret, url)


def _replicated(settings: Settings, data: Path, secret: str, url: str) -> LocalRedis:
    primary = settings.local_redis_port
    ports = [primary + n for n in range(settings.local_redis_replicas + 1)]
    sentinel_ports = [settings.local_sentinel_port + n for n in range(SENTINELS)]
    layout = data / "redis-set.json"
    shape = {"nodes": ports, "sentinels": sentinel_ports}
    fresh = not layout.exists() or json.loads(layout.read_text()) != shape
    found = LocalRedis(url, secret, sentinel_addresses=",".join(f"127.0.0.1:{port}" for port in sentinel_ports))
    for n, port in enumerate(ports):
        name = "redis" if n == 0 else f"redis-replica-{n}"
        found.nodes[name] = _write(data / f"{name}.conf", fresh, lambda port=port, n=n, name=name: node_conf(
            settings, port, data / name, secret, None if n == 0 else primary))
    for n, port in enumerate(sentinel_ports, start=1):
        name = f"sentinel-{n}"
        found.sentinels[name] = _write(data / f"{name}.conf", fresh, lambda port=port, name=name: sentinel_conf(
            port, data / name, secret, primary))
    layout.write_text(json.dumps(shape))
    return found


def _write(conf: Path, fresh: bool, render) -> Path:
    """Write ``conf`` when it is missing or the set changed shape; otherwise keep what the nodes rewrote."""
    if fresh or not conf.exists():
        conf.write_text(render())
        conf.chmod(0o600)
    return conf
