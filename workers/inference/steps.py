"""The Celery bootstep that runs inferq's batching consumers inside a Celery worker.

The worker keeps everything Celery gives it (remote control, heartbeats, signals, warm
shutdown on SIGTERM) while the model's queue is drained by ``BatchConsumer`` threads.
"""
from __future__ import annotations

import logging
import threading

from celery import bootsteps

from shared import keys
from shared.settings import Settings
from workers.inference import runtime
from workers.inference.consumer import BatchConsumer
from workers.inference.runtime import worker_identity

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 120.0
"""How long a warm shutdown waits for the batch in hand to finish."""


class BatchConsumerStep(bootsteps.StartStopStep):
    """Loads the models in the worker process, runs one consumer thread per model, and a
    watcher thread that rolls out new versions (``RepositoryWatcher``)."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.consumers: dict[str, BatchConsumer] = {}
        self.threads: list[threading.Thread] = []
        self.watcher: RepositoryWatcher | None = None
        self.state = None
        self.settings: Settings | None = None

    def start(self, worker) -> None:
        self.settings = worker.app.conf.inferq_settings
        self.state = runtime.current_or_init(self.settings)  # the solo pool's init signal may have built it
        self.start_consumers()
        self.watcher = RepositoryWatcher(self.state.store.redis, self.state.registry, self.settings,
                                         on_change=self.start_consumers)
        thread = threading.Thread(target=self.watcher.run_forever, name="model-watcher", daemon=True)
        thread.start()
        self.threads.append(thread)

    def start_consumers(self) -> None:
        """One consumer per served model; a model that appears later gets one when it loads."""
        registry = self.state.registry
        for name in registry.served_names():
            if name in self.consumers:
                continue
            policy = registry.batch_policy(name)
            consumer = BatchConsumer(self.state.store.redis, self.state.store, registry, name,
                                     worker_identity(self.settings), policy, self.settings)
            thread = threading.Thread(target=consumer.run_forever, name=f"batch-{name}", daemon=True)
            thread.start()
            self.consumers[name] = consumer
            self.threads.append(thread)
            log.info("batching consumer started for %s (%s)", name, policy)

    def stop(self, worker) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for consumer in self.consumers.values():
            consumer.stop()
        for thread in self.threads:
            thread.join(STOP_TIMEOUT_S)
        log.info("batching consumers stopped")


class RepositoryWatcher:
    """Rescans the model repository every ``INFERQ_RELOAD_INTERVAL_S``, and at once when
    anyone publishes on the reload channel (``POST /v1/models:reload``)."""

    def __init__(self, client, registry, settings: Settings, on_change=None):
        self.redis = client
        self.registry = registry
        self.settings = settings
        self.on_change = on_change
        self.stopping = threading.Event()

    def run_forever(self) -> None:
        pubsub = None
        while not self.stopping.is_set():
            try:
                if pubsub is None:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(keys.MODELS_RELOAD_CHANNEL)
                interval = self.settings.reload_interval_s
                message = pubsub.get_message(timeout=interval if interval > 0 else 1.0)
                if message is None and interval <= 0:
                    continue
                if message is not None:
                    log.info("reload requested; rescanning %s", self.settings.models_dir)
                self.registry.sync()
                if self.on_change is not None:
                    self.on_change()
            except Exception:
                log.exception("model repository scan failed; retrying")
                pubsub = None
                self.stopping.wait(1.0)

    def stop(self) -> None:
        self.stopping.set()
