"""What the dashboard shows: a snapshot per model, and a 15-minute history kept in Redis.

Every web process may take a snapshot, but only one per two-second slot is stored (a
``SET NX`` on the slot), so all processes serve the same history. A sampler in each web
process takes them continuously (``start_sampler``); ``GET /v1/stats`` also takes one when
the newest is stale, so the history never depends on a single process.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from urllib.parse import urlsplit

import orjson

from shared import backlog as backlogs
from shared import keys, throughput
from shared.keys import BATCH_SIZE_BUCKETS
from shared.signatures import ModelCatalog

log = logging.getLogger(__name__)

SLOT_S = 2.0
"""Seconds between two stored snapshots."""

HISTORY_LENGTH = int(15 * 60 / SLOT_S)
"""Snapshots kept: fifteen minutes."""

PERCENTILES = (50, 99)
TIMING_PARTS = ("queued_ms", "batch_wait_ms", "inference_ms", "latency_ms")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def latency(redis, model: str) -> dict:
    """p50 and p99 of each timing part over the model's latest finished jobs."""
    timings = [orjson.loads(raw) for raw in redis.lrange(keys.recent_timings(model), 0, -1)]
    return {part: {f"p{q}": percentile([t[part] for t in timings if part in t], q) for q in PERCENTILES}
            for part in TIMING_PARTS}


def model_snapshot(redis, catalog: ModelCatalog, model: str, now: float) -> dict:
    """One model's figures right now."""
    sizes = {k.decode(): int(v) for k, v in redis.hgetall(keys.batch_size_histogram(model)).items()}
    desired = {k.decode(): int(v) for k, v in redis.hgetall(keys.AUTOSCALER_DESIRED).items()}
    program = next((p for p in desired if model in p.removeprefix("worker-").split("+")), None)
    return {
        "backlog": backlogs.backlog(redis, model),
        "oldest_queued_age_s": round(backlogs.oldest_queued_age_s(redis, model, now), 3),
        "workers": catalog.live_workers(model),
        "desired_workers": desired.get(program) if program else None,
        "jobs_per_second": round(throughput.jobs_per_second(redis, model, now), 3),
        "instances_total": sizes.get("sum", 0),
        "latency_ms": latency(redis, model),
        "batch_sizes": {str(b): sizes.get(str(b), 0) for b in BATCH_SIZE_BUCKETS} | {"+Inf": sizes.get("+Inf", 0)},
        "lanes": lanes(redis, model, now),
    }


def lanes(redis, model: str, now: float) -> dict:
    """Per priority lane: jobs waiting to be claimed, and how long the oldest of them has waited."""
    ages = backlogs.lane_oldest_ages(redis, model, now)
    return {lane.value: {"waiting": depth, "oldest_age_s": round(ages[lane], 3)}
            for lane, depth in backlogs.lane_depths(redis, model).items()}


def snapshot(redis, now: float | None = None) -> dict:
    """Every model's figures, and the service-wide webhook and failure views."""
    now = time.time() if now is None else now
    catalog = ModelCatalog(redis)
    return {
        "at": now,
        "models": {name: model_snapshot(redis, catalog, name, now) for name in catalog.names()},
        "webhooks": {k.decode(): int(v) for k, v in redis.hgetall(keys.METRICS_WEBHOOKS).items()},
        "dead_webhooks": [orjson.loads(raw) for raw in redis.lrange(keys.DEAD_WEBHOOKS, 0, 19)],
        "failed_jobs": [orjson.loads(raw) for raw in redis.lrange(keys.RECENT_FAILURES, 0, 19)],
    }


def record(redis, now: float | None = None, current: dict | None = None) -> bool:
    """Store a snapshot for the current slot unless some process already did; True if stored.

    ``current`` is a snapshot already taken at ``now``, so a caller that has one does not
    read Redis twice for it.
    """
    now = time.time() if now is None else now
    slot = int(now // SLOT_S)
    if not redis.set(f"{keys.STATS_HISTORY}:slot:{slot}", 1, nx=True, ex=int(SLOT_S * 5)):
        return False
    current = current if current is not None else snapshot(redis, now)
    point = {"at": now, "models": {name: _point(figures) for name, figures in current["models"].items()}}
    pipe = redis.pipeline(transaction=False)
    pipe.lpush(keys.STATS_HISTORY, orjson.dumps(point))
    pipe.ltrim(keys.STATS_HISTORY, 0, HISTORY_LENGTH - 1)
    pipe.execute()
    return True


def _point(figures: dict) -> dict:
    """The part of a model's snapshot the charts plot over time."""
    return {key: figures[key] for key in ("backlog", "oldest_queued_age_s", "workers", "desired_workers",
                                          "jobs_per_second", "instances_total")} | {
        "p50_ms": figures["latency_ms"]["latency_ms"]["p50"], "p99_ms": figures["latency_ms"]["latency_ms"]["p99"]}


def history(redis) -> list[dict]:
    """The stored snapshots, oldest first, with instances/s derived between neighbours."""
    points = [orjson.loads(raw) for raw in reversed(redis.lrange(keys.STATS_HISTORY, 0, -1))]
    for previous, point in zip(points, points[1:], strict=False):
        elapsed = max(1e-6, point["at"] - previous["at"])
        for name, figures in point["models"].items():
            before = previous["models"].get(name, {}).get("instances_total", figures["instances_total"])
            figures["instances_per_second"] = round(max(0, figures["instances_total"] - before) / elapsed, 1)
    return points


def start_sampler(redis) -> threading.Thread:
    """Record a snapshot every slot for as long as the process lives (one per web process)."""
    def loop():
        while True:
            try:
                record(redis)
            except Exception:
                log.warning("could not record a stats snapshot; retrying", exc_info=True)
            time.sleep(SLOT_S / 2)

    thread = threading.Thread(target=loop, name="stats-sampler", daemon=True)
    thread.start()
    return thread


def for_owner(redis, figures: dict, owner: str) -> dict:
    """What one API key may see: the per-model figures, and only its own failed jobs and dead
    deliveries, with webhook URLs cut to scheme and host (they often carry tokens)."""
    def own(entries: list[dict], id_field: str) -> list[dict]:
        pipe = redis.pipeline(transaction=False)
        for entry in entries:
            pipe.hget(keys.job(str(entry.get(id_field, ""))), "owner")
        owners = pipe.execute() if entries else []
        return [entry for entry, who in zip(entries, owners, strict=True) if (who or b"").decode() == owner]

    dead = [{**entry, "url": _scheme_and_host(entry.get("url", ""))} for entry in own(figures["dead_webhooks"], "job_id")]
    return {**figures, "dead_webhooks": dead, "failed_jobs": own(figures["failed_jobs"], "id")}


def _scheme_and_host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" if parts.scheme and parts.hostname else ""


def with_history(redis, now: float) -> dict:
    """The figures now and the last 15 minutes of them; the first reader in a slot records it."""
    current = snapshot(redis, now)
    past = history(redis)
    stale = not past or now - past[-1]["at"] >= SLOT_S
    if stale and record(redis, now, current):
        past = history(redis)
    return {**current, "history": past, "slot_s": SLOT_S}
