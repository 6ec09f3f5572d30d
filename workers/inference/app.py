"""The inference worker's Celery app, made from the settings its entry point resolved.

In ``batch`` mode (the default) the ``BatchConsumerStep`` loads the models in the worker
process and drains their lanes in batches. In ``prefork`` mode Celery consumes the models'
Celery lists itself, one job per task, fed from the lanes by ``LaneFeederStep``, and models
load in each pool child (``worker_process_init``), never in the parent: TensorFlow is not
fork-safe.
"""
from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from shared.settings import Settings, WorkerMode
from workers.celery_config import make_celery
from workers.inference import runtime

_settings: Settings | None = None
"""The settings the app of this process was made with; pool children inherit them."""


def make_app(settings: Settings) -> Celery:
    """The Celery app serving ``settings.worker_models`` in ``settings.worker_mode``."""
    global _settings
    _settings = settings
    app = make_celery(settings)
    app.conf.include = ["workers.inference.tasks"]
    app.conf.inferq_settings = settings
    if settings.worker_mode is WorkerMode.BATCH:
        from workers.inference.steps import BatchConsumerStep

        app.steps["worker"].add(BatchConsumerStep)
    else:
        from workers.inference.lane_feeder import LaneFeederStep

        app.steps["worker"].add(LaneFeederStep)
    return app


@worker_process_init.connect
def load_models(**_kwargs) -> None:
    """Pool children load, warm up and publish their models before their first job."""
    if _settings is not None:
        runtime.init(_settings)
