"""What one worker process holds (Redis, job store, loaded models) and how it runs a job.

Built once per pool process in ``worker_process_init``; a task only passes a job id.
"""
from __future__ import annotations

import importlib
import logging
import socket

import redis

from shared.jobs import ALREADY_FINISHED, JobStore
from shared.settings import Settings
from shared.signatures import ModelCatalog
from workers import start_priority
from workers.registry import ModelRegistry

log = logging.getLogger(__name__)

ERROR_MESSAGE_LIMIT = 2000
"""Longest error message stored on a failed job."""

_current: "WorkerRuntime | None" = None


class WorkerRuntime:
    """Per-process worker state; ``run`` is the whole life of one job on this side."""

    def __init__(self, settings: Settings, client: redis.Redis, registry: ModelRegistry):
        self.settings = settings
        self.store = JobStore(client, settings.job_ttl_s)
        self.registry = registry
        self.hostname = socket.gethostname()

    def run(self, job_id: str) -> None:
        """Run the job once. A redelivered, finished or expired job is skipped (idempotent)."""
        job = self.store.start(job_id, self.hostname)
        if job is None:
            log.warning("job %s expired before it ran", job_id)
            return
        if job == ALREADY_FINISHED:
            log.info("job %s already finished; skipping the redelivery", job_id)
            return
        try:
            model = self.registry.get(job.model, int(job.model_version))
            outputs = model.predict(model.to_batch(job))
            predictions = model.encode(outputs)
            labels = model.top_labels(outputs)
        except Exception as exc:  # the job must end failed, never stay running
            log.warning("job %s failed: %s: %s", job_id, type(exc).__name__, exc)
            self.store.fail(job, type(exc).__name__, str(exc)[:ERROR_MESSAGE_LIMIT])
            return
        self.store.succeed(job, predictions, labels_json=labels)


def init(settings: Settings) -> WorkerRuntime:
    """Configure TensorFlow, import plug-in modules, load and publish models."""
    global _current
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(settings.tf_intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(settings.tf_inter_op_threads)
    for module in filter(None, (m.strip() for m in settings.worker_imports.split(","))):
        importlib.import_module(module)
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5.0,
                                  health_check_interval=30)
    registry = ModelRegistry(settings, ModelCatalog(client), settings.model_names or None)
    registry.sync()
    start_priority.back_to_normal()  # loaded and warm: serve at normal priority
    _current = WorkerRuntime(settings, client, registry)
    return _current


def current() -> WorkerRuntime:
    """This process's runtime; built on first use where no init signal fired."""
    return _current if _current is not None else init(Settings.from_env())
