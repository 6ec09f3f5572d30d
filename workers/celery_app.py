"""The worker's Celery app: ``celery -A workers.celery_app worker`` (see ``python -m workers``).

Models load in each pool child (``worker_process_init``), never in the parent: TensorFlow
is not fork-safe, and a crashed child is replaced with a freshly loaded one.
"""
from __future__ import annotations

from celery.signals import worker_process_init

from shared.broker import make_celery
from shared.settings import Settings
from workers import runtime

settings = Settings.from_env()
app = make_celery(settings)
app.conf.include = ["workers.tasks"]


@worker_process_init.connect
def load_models(**_kwargs) -> None:
    """Load, warm up and publish this child's models before it takes its first job."""
    runtime.init(settings)
