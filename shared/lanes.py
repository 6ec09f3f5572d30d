"""Priority lanes: what a job's ``priority`` means, and the keys that order a model's queue.

Each model has one lane per priority, a Redis sorted set of job ids. Within a lane a job's
score is a start-time fair-queueing tag (``submit.lua``): one past the later of the lane's
clock (the tag of the job claimed last) and its owner's previous tag. Each owner's jobs
therefore keep their order, while owners take turns: a key that queued 5,000 jobs holds
tags far ahead, and a newcomer's first job lands next to the lane's head. A job's place is
its rank in that set (``ZRANK``, O(log n)), so no one scans a queue to tell a client where
its job stands. The Celery messages wait in a hash beside the lanes until a claim moves them.
"""
from __future__ import annotations

import enum

from shared import keys
from shared.errors import InvalidInput


class Priority(enum.StrEnum):
    """A job's lane; ``high`` runs before ``normal``, ``normal`` before ``low``."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """1 for the first lane served, 3 for the last."""
        return LANES.index(self) + 1


LANES = (Priority.HIGH, Priority.NORMAL, Priority.LOW)
"""Lanes in the order a claim serves them when no lower lane is due its share."""

PRIORITY_HEADER = "Inferq-Priority"
MAX_QUEUE_HEADER = "Inferq-Max-Queue-S"


def parse_priority(value: object) -> Priority:
    """The lane a submit asked for (``normal`` when absent); 422 for anything else."""
    if value is None:
        return Priority.NORMAL
    try:
        return Priority(value) if isinstance(value, str) else Priority("?")
    except ValueError:
        raise InvalidInput(f"priority must be one of high, normal, low; got {str(value)[:40]!r}") from None


def parse_max_queue_s(value: object, ttl_s: int) -> float:
    """The queue deadline a submit asked for (0: none): a number with ``0 < S <= ttl``; 422 otherwise."""
    if value is None:
        return 0.0
    if isinstance(value, str):
        text = value
        try:
            value = float(text.strip())
        except ValueError:
            raise InvalidInput(f"max_queue_s must be a number of seconds; got {text[:40]!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= ttl_s:
        raise InvalidInput(f"max_queue_s must be a number with 0 < max_queue_s <= {ttl_s} (the job TTL)")
    return float(value)


def lane_keys(model: str) -> list[str]:
    """The model's lanes, first served first."""
    return [keys.lane(model, lane.value) for lane in LANES]


def arrival_keys(model: str) -> list[str]:
    """The model's per-lane arrival sets (job id -> submit time), first lane first."""
    return [keys.lane_arrivals(model, lane.value) for lane in LANES]


def claim_keys(model: str, destination: str) -> list[str]:
    """KEYS of ``claim.lua`` for a claim of ``model``'s jobs into ``destination``."""
    return [keys.queue(model), keys.lane_messages(model), keys.doorbell(model), destination,
            keys.lane_turns(model), keys.lane_clocks(model), *lane_keys(model), *arrival_keys(model)]


def share_period(share: float) -> int:
    """Every how many batches each lower lane is served first (0: never; strict priority)."""
    return 0 if share <= 0 else max(3, round(1 / share))
