"""The worker's Celery app: ``celery -A workers.celery_app worker`` (see ``python -m workers``).

In ``batch`` mode (the default) the ``BatchConsumerStep`` loads the models in the worker
process and drains their queues in batches. In ``prefork`` mode Celery consumes the queues
itself, one job per task, and models load in each pool child (``worker_process_init``),
never in the parent: TensorFlow is not fork-safe.
"""
from __future__ import annotations

from celery.signals import worker_process_init

from shared.broker import make_celery
from shared.settings import Settings
from workers import runtime

settings = Settings.from_env()
app = make_celery(settings)
app.conf.include = ["workers.tasks"]
if settings.worker_mode == "batch":
    from workers.steps import BatchConsumerStep

    app.steps["worker"].add(BatchConsumerStep)


@worker_process_init.connect
def load_models(**_kwargs) -> None:
    """Prefork children load, warm up and publish their models before their first job."""
    runtime.init(settings)
