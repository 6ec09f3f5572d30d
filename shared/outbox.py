"""The webhook outbox: the one place a delivery is queued or scheduled, with one set of books.

A delivery is queued by the Lua step that starts a job (``started``), the one that ends it
(``completed``), a redelivery, the sweep that finds a lost delivery, and a retry falling
due. All of them run ``queue_delivery`` from ``shared/lua/outbox.lua``, so each leaves the
same trace: the message on ``WEBHOOK_QUEUE``, an entry in ``WEBHOOK_OUTSTANDING`` and the
event's open flag. A delivery leaves the books when it reaches a final outcome.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from shared import celery_message, keys, lua
from shared.replication import Replication
from shared.tasks import DELIVER_TASK, WEBHOOK_QUEUE
from shared.webhooks import WebhookEvent, webhook_id


@dataclass(frozen=True)
class Delivery:
    """One attempt to be made of one event of one job."""

    job_id: str
    event: WebhookEvent
    attempt: int = 1

    @property
    def member(self) -> str:
        """How the delivery is named in ``WEBHOOK_OUTSTANDING`` (every attempt shares it)."""
        return f"{self.job_id}|{self.event.value}"

    @property
    def scheduled_member(self) -> str:
        """How a retry waiting for its time is named in ``WEBHOOK_SCHEDULE``."""
        return f"{self.member}|{self.attempt}"

    @classmethod
    def from_scheduled(cls, member: str) -> Delivery:
        """The delivery behind a ``WEBHOOK_SCHEDULE`` entry."""
        job_id, event, attempt = member.rsplit("|", 2)
        return cls(job_id, WebhookEvent(event), int(attempt))

    @classmethod
    def from_outstanding(cls, member: str, attempt: int) -> Delivery:
        """The delivery behind a ``WEBHOOK_OUTSTANDING`` entry, as its ``attempt``-th try."""
        job_id, event = member.rsplit("|", 1)
        return cls(job_id, WebhookEvent(event), attempt)

    def message(self) -> bytes:
        """The Celery message asking the webhook worker to make this attempt."""
        args = [self.job_id, self.event.value, webhook_id(self.job_id, self.event), self.attempt]
        return celery_message.encode_call(DELIVER_TASK, args, WEBHOOK_QUEUE)

    def keys(self) -> list[str]:
        """The keys ``queue_delivery`` writes, in the order the scripts take them."""
        return [WEBHOOK_QUEUE, keys.WEBHOOK_OUTSTANDING, keys.webhook_open(self.job_id, self.event.value)]

    def script_args(self, now: float, ttl_s: int) -> dict:
        """The arguments ``queue_delivery`` needs, for a script's JSON argument table."""
        return {"message": self.message().decode(), "member": self.member, "now": repr(now), "ttl": ttl_s}


class Outbox:
    """Queues and schedules webhook deliveries outside the job steps (which queue their own)."""

    def __init__(self, redis, ttl_s: int, replication: Replication | None = None):
        self.redis = redis
        self.ttl_s = ttl_s
        self.replication = replication or Replication(redis, 0, 1)
        self._queue = lua.LuaScript(redis, "queue_delivery")

    def queue(self, delivery: Delivery, scheduled: str = "", pipeline=None, now: float | None = None):
        """Queue ``delivery`` now. With ``scheduled``, only if this call takes that entry off
        the schedule (returns 0 when another scheduler already did)."""
        moment = time.time() if now is None else now
        args = {**delivery.script_args(moment, self.ttl_s), "scheduled": scheduled}
        return self._queue(keys=[*delivery.keys(), keys.WEBHOOK_SCHEDULE], args=[orjson.dumps(args)],
                           client=pipeline if pipeline is not None else self.redis)

    def schedule(self, delivery: Delivery, due: float) -> None:
        """Keep a retry in Redis until ``due``; it stays outstanding meanwhile."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.WEBHOOK_SCHEDULE, {delivery.scheduled_member: due})
        pipe.zadd(keys.WEBHOOK_OUTSTANDING, {delivery.member: due})
        self.replication.execute(pipe, f"webhook retry of job {delivery.job_id}")

    def settle(self, delivery: Delivery, pipeline) -> None:
        """Take a delivery that reached a final outcome off the books."""
        pipeline.delete(keys.webhook_open(delivery.job_id, delivery.event.value))
        pipeline.zrem(keys.WEBHOOK_OUTSTANDING, delivery.member)

    def is_open(self, job_id: str, event: WebhookEvent) -> bool:
        """True while ``event``'s delivery has not reached a final outcome."""
        return bool(self.redis.exists(keys.webhook_open(job_id, event.value)))
