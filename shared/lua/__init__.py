"""The Lua scripts that move jobs and webhook deliveries, one file each, read once at import.

Each runs atomically in Redis; ``outbox.lua`` is prepended to every script so the one
function that queues a webhook delivery is the same code wherever a delivery is queued.
"""
from __future__ import annotations

from pathlib import Path

import redis

HERE = Path(__file__).parent


def script(name: str) -> str:
    """The source of ``<name>.lua``, with the outbox functions it may call defined first."""
    return (HERE / "outbox.lua").read_text() + "\n" + (HERE / f"{name}.lua").read_text()


class LuaScript:
    """One of these scripts, called the cheapest safe way on a client or in a pipeline.

    On a client it runs by SHA (redis-py loads it on ``NOSCRIPT``). In a pipeline it is sent
    whole, as ``EVAL``: redis-py would otherwise send ``SCRIPT EXISTS`` before every pipeline
    that carries a script, a round trip per batch on the worker's hot path, and an ``EVALSHA``
    that meets a Redis whose script cache was lost (a restart) fails while the pipeline's other
    commands, acknowledgements included, still run. Redis caches ``EVAL`` bodies too, so the
    only cost is a few kilobytes over the socket.
    """

    def __init__(self, client: redis.Redis, name: str):
        self.source = script(name)
        self._by_sha = client.register_script(self.source)

    def __call__(self, keys: list, args: list, client=None):
        if isinstance(client, redis.client.Pipeline):
            return client.eval(self.source, len(keys), *keys, *args)
        return self._by_sha(keys=keys, args=args, client=client)
