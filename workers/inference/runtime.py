"""What one worker process holds (Redis, job store, loaded models) and how it runs a job.

Built once per pool process in ``worker_process_init``; a task only passes a job id.
"""
from __future__ import annotations

import importlib
import logging
import socket
import threading

import redis

from shared import redis_connection, tracing
from shared.celery_message import TaskMessage
from shared.job_store import JobStore
from shared.replication import Replication
from shared.settings import Settings
from shared.signatures import ModelCatalog
from workers.inference import start_priority
from workers.inference.execution import JobRunner
from workers.inference.registry import ModelRegistry

log = logging.getLogger(__name__)

_current: WorkerRuntime | None = None

WORKER_SOCKET_TIMEOUT_S = 5.0
"""A Redis that stops answering (a frozen primary) fails the worker's command after this long,
so the batch loop reconnects (through Sentinel, to the new primary) instead of hanging."""


def worker_identity(settings: Settings) -> str:
    """A stable id: restarts of the same worker find and re-queue what it held."""
    return settings.worker_id or socket.gethostname()


class WorkerRuntime:
    """Per-process worker state: Redis, the job store, the loaded models and the job runner."""

    def __init__(self, settings: Settings, client: redis.Redis, registry: ModelRegistry):
        self.settings = settings
        self.store = JobStore(client, settings.job_ttl_s)
        self.registry = registry
        self.stopping = threading.Event()
        self.runner = JobRunner(self.store, registry, settings, worker_identity(settings), self.stopping)
        self.replication = Replication(client, settings.redis_min_replicas, settings.redis_wait_ms)

    def run(self, message: TaskMessage) -> None:
        """Run one job (a prefork task) through the same path as a batch, in one forward pass.
        Idempotent: a redelivered, finished or expired job is skipped."""
        pipe = self.store.redis.pipeline(transaction=False)
        self.runner.run([message], None, self.settings.max_instances, pipe)
        self.replication.execute(pipe, f"finish of job {message.job_id}")


def init(settings: Settings) -> WorkerRuntime:
    """Start tracing (after any fork: this is the process that runs jobs), configure TensorFlow,
    import plug-in modules, load and publish models."""
    global _current
    import tensorflow as tf

    tracing.init(tracing.Service.WORKER)
    tf.config.threading.set_intra_op_parallelism_threads(settings.tf_intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(settings.tf_inter_op_threads)
    for module in filter(None, (m.strip() for m in settings.worker_imports.split(","))):
        importlib.import_module(module)
    client = redis_connection.connect(settings, socket_timeout=WORKER_SOCKET_TIMEOUT_S, connect_timeout=5.0)
    registry = ModelRegistry(settings, ModelCatalog(client), settings.model_names or None)
    registry.sync()
    start_priority.back_to_normal()  # loaded and warm: serve at normal priority
    _current = WorkerRuntime(settings, client, registry)
    return _current


def current() -> WorkerRuntime:
    """This process's runtime, built by ``init`` when the process started."""
    if _current is None:
        raise RuntimeError("the worker runtime was never initialised (worker_process_init did not fire)")
    return _current


def current_or_init(settings: Settings) -> WorkerRuntime:
    """This process's runtime; built here where no init signal fired."""
    return _current if _current is not None else init(settings)
