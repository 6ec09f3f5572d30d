"""Model signatures: what a loaded model takes and returns, shared through Redis.

Workers publish a signature when they load a model; web reads it to list models and to
validate inputs, because web never imports TensorFlow.
"""
from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field

import orjson

from shared import keys

WORKER_ALIVE_S = 15.0
"""A worker whose last heartbeat is older than this is not counted (it beats every 5 s)."""


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: shape with ``None`` for free dimensions, and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    @property
    def instance_shape(self) -> tuple[int | None, ...]:
        """The shape of one instance: the spec without its batch axis."""
        return self.shape[1:]


@dataclass(frozen=True)
class ModelSignature:
    """One loaded model version, as the worker that loaded it saw it."""

    name: str
    version: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    config: dict = field(default_factory=dict, compare=False)
    """What ``inferq.yaml`` set: description, batching, preprocessing, labels, format."""

    @property
    def input_names(self) -> list[str]:
        """The names clients use for named inputs, in the model's order."""
        return [spec.name for spec in self.inputs]

    @property
    def image_input(self) -> dict | None:
        """The image preprocessing ``inferq.yaml`` declares, or None."""
        return (self.config.get("preprocessing") or {}).get("image")

    def to_json(self) -> bytes:
        """Encode for Redis."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes) -> ModelSignature:
        """Decode what ``to_json`` wrote."""
        data = orjson.loads(raw)

        def specs(items):
            return tuple(TensorSpec(s["name"], tuple(s["shape"]), s["dtype"]) for s in items)

        return cls(data["name"], int(data["version"]), specs(data["inputs"]), specs(data["outputs"]),
                   data.get("config") or {})


class ModelState(enum.StrEnum):
    """Where a model version is in its life on the workers."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"
    RETIRING = "retiring"
    """No longer routed to; unloaded once the jobs already routed to it have ended."""
    RETIRED = "retired"


class ModelCatalog:
    """The models workers have published, read from and written to Redis.

    With ``cache_ttl_s`` a reader keeps each model's versions for that long, sparing every
    submit a Redis round trip; a newly published version is seen within the TTL.
    """

    def __init__(self, redis, cache_ttl_s: float = 0.0):
        self.redis = redis
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, list[ModelSignature]]] = {}

    def publish(self, signature: ModelSignature) -> None:
        """Announce a loaded model version so web can route and validate jobs for it."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.model(signature.name), str(signature.version), signature.to_json())
        pipe.sadd(keys.MODELS_SET, signature.name)
        self.set_state(signature.name, signature.version, ModelState.READY, pipeline=pipe)
        pipe.execute()

    def withdraw(self, name: str, version: int, state: ModelState = ModelState.RETIRING,
                 reason: str = "") -> None:
        """Stop routing new jobs to a version (web sees it within its cache TTL)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.model(name), str(version))
        self.set_state(name, version, state, reason, pipeline=pipe)
        pipe.execute()

    def set_state(self, name: str, version: int, state: ModelState, reason: str = "", pipeline=None) -> None:
        """Record a version's state (and why, for ``failed``) for ``GET /v1/models``."""
        target = pipeline if pipeline is not None else self.redis
        record = orjson.dumps({"state": state, "reason": reason, "at": time.time()})
        target.hset(keys.model_states(name), str(version), record)
        target.sadd(keys.MODELS_SET, name)

    def states(self, name: str) -> dict[int, dict]:
        """``version -> {state, reason, at}`` for every version a worker has tried."""
        raw = self.redis.hgetall(keys.model_states(name))
        return {int(version): orjson.loads(value) for version, value in raw.items()}

    def pending(self, name: str) -> dict[int, int]:
        """``version -> jobs routed to it and not yet ended``."""
        raw = self.redis.hgetall(keys.pending(name))
        return {int(version): int(count) for version, count in raw.items()}

    def names(self) -> list[str]:
        """Every published model name, sorted."""
        return sorted(name.decode() for name in self.redis.smembers(keys.MODELS_SET))

    def versions(self, name: str, fresh: bool = False) -> list[ModelSignature]:
        """Published versions of one model, oldest first; empty when the model is unknown."""
        now = time.monotonic()
        cached = self._cache.get(name)
        if not fresh and cached is not None and now - cached[0] < self.cache_ttl_s:
            return cached[1]
        raw = self.redis.hgetall(keys.model(name))
        signatures = sorted((ModelSignature.from_json(value) for value in raw.values()),
                            key=lambda s: s.version)
        if self.cache_ttl_s > 0 and signatures:
            self._cache[name] = (now, signatures)
        return signatures

    def version(self, name: str, version: int) -> ModelSignature | None:
        """One published version, or None. A miss re-reads Redis: the version may be newer
        than the cache (a client pinning a version it just saw listed must not get a 404)."""
        found = next((s for s in self.versions(name) if s.version == version), None)
        if found is None and self.cache_ttl_s > 0:
            found = next((s for s in self.versions(name, fresh=True) if s.version == version), None)
        return found

    def live_workers(self, name: str) -> int:
        """Workers whose heartbeat for ``name`` is recent."""
        return self.redis.zcount(keys.workers(name), time.time() - WORKER_ALIVE_S, "+inf")

    def latest(self, name: str) -> ModelSignature | None:
        """The newest published version, or None when the model is unknown."""
        versions = self.versions(name)
        return versions[-1] if versions else None
