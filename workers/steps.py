"""The Celery bootstep that runs inferq's batching consumers inside a Celery worker.

The worker keeps everything Celery gives it (remote control, heartbeats, signals, warm
shutdown on SIGTERM) while the model's queue is drained by ``BatchConsumer`` threads.
"""
from __future__ import annotations

import logging
import socket
import threading

from celery import bootsteps

from shared.settings import Settings
from workers import runtime
from workers.consumer import BatchConsumer

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 120.0
"""How long a warm shutdown waits for the batch in hand to finish."""


def worker_identity(settings: Settings) -> str:
    """A stable id: restarts of the same worker find and re-queue what it held."""
    return settings.worker_id or socket.gethostname()


class BatchConsumerStep(bootsteps.StartStopStep):
    """Loads the models in the worker process and runs one consumer thread per model."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.consumers: list[BatchConsumer] = []
        self.threads: list[threading.Thread] = []

    def start(self, worker) -> None:
        settings = Settings.from_env()
        state = runtime.init(settings)
        for name in sorted({name for name, _ in state.registry.loaded()}):
            policy = state.registry.batch_policy(name)
            consumer = BatchConsumer(state.store.redis, state.store, state.registry, name,
                                     worker_identity(settings), policy)
            thread = threading.Thread(target=consumer.run_forever, name=f"batch-{name}", daemon=True)
            thread.start()
            self.consumers.append(consumer)
            self.threads.append(thread)
            log.info("batching consumer started for %s (%s)", name, policy)

    def stop(self, worker) -> None:
        for consumer in self.consumers:
            consumer.stop()
        for thread in self.threads:
            thread.join(STOP_TIMEOUT_S)
        log.info("batching consumers stopped")
