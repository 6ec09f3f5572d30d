"""The replicated Redis of a fault stack (``INFERQ_LOCAL_REDIS_REPLICAS=2``): which node is
primary now, each node's role, and freezing, killing and resuming them by supervisord name."""
from __future__ import annotations

import os
import signal
import threading

import redis

from shared import redis_connection
from shared.replication import online_replicas
from shared.settings import Settings
from tests.integration.helpers import wait_until

NODES = ("redis", "redis-replica-1", "redis-replica-2")
"""supervisord programs of the primary first started and its two replicas, on consecutive ports."""


class RedisSet:
    """The three data nodes and three Sentinels of one stack."""

    def __init__(self, stack):
        self.stack = stack
        self.password = (stack.data_dir / "redis.password").read_text().strip()
        base = int(stack.env["INFERQ_LOCAL_REDIS_PORT"])
        self.ports = {name: base + n for n, name in enumerate(NODES)}
        sentinel = int(stack.env["INFERQ_LOCAL_SENTINEL_PORT"])
        self.settings = Settings(redis_url=f"redis://:{self.password}@127.0.0.1:{base}/0",
                                 redis_sentinels=",".join(f"127.0.0.1:{sentinel + n}" for n in range(3)),
                                 redis_sentinel_password=self.password)
        self.sentinels = redis_connection.sentinels(self.settings)

    def primary_client(self) -> redis.Redis:
        """A client that follows the primary, as the stack's processes do."""
        return redis_connection.connect(self.settings, socket_timeout=10)

    def node(self, name: str) -> redis.Redis:
        return redis.Redis(port=self.ports[name], password=self.password, socket_timeout=2, socket_connect_timeout=2)

    def primary(self) -> str | None:
        """The program Sentinel names as primary now; None while none is (mid-failover)."""
        try:
            _host, port = self.sentinels.discover_master("inferq")
        except redis.RedisError:
            return None
        return next(name for name, p in self.ports.items() if p == port)

    def promoted_over(self, old: str, timeout_s: float = 30) -> str:
        """Wait until Sentinel names a primary other than ``old``; returns it."""
        return wait_until(lambda: (lambda now: now if now not in (None, old) else None)(self.primary()),
                          timeout_s, f"Sentinel to promote a replica over {old}", step_s=0.25)

    def role(self, name: str) -> tuple[str, int | None]:
        """(``master`` or ``slave``, the port it replicates from), read from the node itself."""
        try:
            info = self.node(name).info("replication")
        except redis.RedisError:
            return ("unreachable", None)
        return (info["role"], info.get("master_port"))

    def replicas_of(self, primary: str) -> list[str]:
        return [name for name in NODES if name != primary]

    def pid(self, name: str) -> int:
        return int(self.stack.supervisorctl("pid", name).strip() or 0)

    def freeze(self, name: str) -> int:
        pid = self.pid(name)
        os.kill(pid, signal.SIGSTOP)
        return pid

    @staticmethod
    def resume(pid: int) -> None:
        os.kill(pid, signal.SIGCONT)

    def kill_held_back(self, name: str) -> threading.Thread:
        """Freeze ``name``, then let supervisord stop it for good: its SIGTERM waits behind the
        freeze and its SIGKILL follows (``stopwaitsecs``), and it is not restarted until ``start``.
        Returns the thread running the stop."""
        self.freeze(name)
        stopping = threading.Thread(target=self.stack.supervisorctl, args=("stop", name), daemon=True)
        stopping.start()
        return stopping

    def start(self, name: str) -> None:
        self.stack.supervisorctl("start", name)

    def healed(self, timeout_s: float = 90) -> str:
        """Wait until every node runs and the primary has both replicas in sync; returns the primary."""
        for name in NODES:
            if "RUNNING" not in self.stack.supervisorctl("status", name):
                self.start(name)
            pid = self.pid(name)
            if pid:
                self.resume(pid)

        def whole():
            primary = self.primary()
            try:
                in_sync = primary is not None and online_replicas(self.node(primary)) == 2
                return primary if in_sync and self.sentinels_ready() else None
            except redis.RedisError:
                return None

        return wait_until(whole, timeout_s, "the primary to have both replicas in sync", step_s=0.5)

    def sentinels_ready(self) -> bool:
        """Whether every Sentinel knows the two others and both replicas, up: only then can any
        of them lead a failover (a new Sentinel learns the replicas from the primary's INFO,
        which it reads every 10 s)."""
        for sentinel in self.sentinels.sentinels:
            replicas = [r for r in sentinel.sentinel_slaves("inferq") if not r.get("is_sdown")]
            if len(replicas) != 2 or len(sentinel.sentinel_sentinels("inferq")) != 2:
                return False
        return True

    def append_to_aof(self, name: str, command: list[str]) -> None:
        """Append ``command`` to the stopped node's append-only file, as if it had taken that
        write just before it died: on its next start it loads it."""
        folder = self.stack.data_dir / name / "appendonlydir"
        manifest = next(folder.glob("*.manifest")).read_text().split()
        increments = [manifest[i + 1] for i, word in enumerate(manifest)
                      if word == "file" and manifest[i + 1].endswith(".incr.aof")]
        with (folder / increments[-1]).open("ab") as aof:
            for part in (["SELECT", "0"], command):
                aof.write(f"*{len(part)}\r\n".encode())
                for word in part:
                    aof.write(f"${len(word.encode())}\r\n{word}\r\n".encode())

    def follows(self, name: str, primary: str) -> bool:
        """Whether ``name`` is now a replica of ``primary``."""
        return self.role(name) == ("slave", self.ports[primary])
