"""Feeds a stock Celery consumer from the priority lanes, for ``INFERQ_WORKER_MODE=prefork``.

Jobs wait in per-priority sorted sets (``shared.lanes``) that Celery cannot read. In prefork
mode Celery's own consumer reads the model's Celery list, so this thread in the worker's
main process keeps that list a few messages deep, moving them with the same atomic claim
the batching consumer uses (``claim.lua``). The messages are the protocol-2 messages the API
wrote, in lane and fair-share order; the list stays short, so a job moved there has at most
a few jobs ahead of it that Celery took in an older order.
"""
from __future__ import annotations

import logging
import threading

from celery import bootsteps

from shared import keys, lanes, lua
from shared.queue import DOORBELL_CAP

log = logging.getLogger(__name__)

BLOCK_S = 1.0
"""How long the feeder blocks on the doorbell before it looks anyway."""

FULL_PAUSE_S = 0.02
"""Pause while Celery's list is at its depth."""


class LaneFeeder:
    """Keeps one model's Celery list ``depth`` messages deep from its lanes."""

    def __init__(self, client, model: str, depth: int, share: float):
        self.redis = client
        self.model = model
        self.depth = max(1, depth)
        self.queue = keys.queue(model)
        self.doorbell = keys.doorbell(model)
        self._keys = lanes.claim_keys(model, self.queue)
        self._period = lanes.share_period(share)
        self._claim = lua.LuaScript(client, "claim")
        self.stopping = threading.Event()

    def feed_once(self) -> int:
        """Top Celery's list up to its depth; returns how many messages were moved."""
        room = self.depth - self.redis.llen(self.queue)
        if room <= 0:
            return 0
        return len(self._claim(keys=self._keys, args=[room, 1, self._period, DOORBELL_CAP]))

    def run_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.redis.llen(self.queue) >= self.depth:
                    self.stopping.wait(FULL_PAUSE_S)
                    continue
                self.redis.blpop([self.doorbell], BLOCK_S)
                self.feed_once()
            except Exception:
                log.exception("feeding %s from its lanes failed; retrying", self.queue)
                self.stopping.wait(BLOCK_S)


class LaneFeederStep(bootsteps.StartStopStep):
    """One feeder thread per model the prefork worker serves."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.feeders: list[LaneFeeder] = []

    def start(self, worker) -> None:
        from shared import redis_connection

        settings = worker.app.conf.inferq_settings
        client = redis_connection.connect(settings)
        for model in settings.model_names:
            feeder = LaneFeeder(client, model, 2 * settings.worker_concurrency, settings.lane_share)
            threading.Thread(target=feeder.run_forever, name=f"lanes-{model}", daemon=True).start()
            self.feeders.append(feeder)

    def stop(self, worker) -> None:
        for feeder in self.feeders:
            feeder.stopping.set()
