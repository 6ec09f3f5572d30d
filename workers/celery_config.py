"""How both worker processes configure Celery; web writes the same messages (``shared.celery_message``).

Only JSON crosses the broker (never pickle), tasks carry a job id rather than the payload,
and acknowledgement happens after the task ran so a dead worker's job is redelivered.
"""
from __future__ import annotations

from celery import Celery

from shared import redis_connection
from shared.settings import Settings

PROC_ALIVE_TIMEOUT_S = 180.0
"""A pool child imports TensorFlow and warms its models up before it reports alive."""


def make_celery(settings: Settings) -> Celery:
    """A Celery app configured from settings: JSON only, late acks, no result backend."""
    broker_url, sentinel_options = redis_connection.celery_broker(settings)
    app = Celery("inferq", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        event_serializer="json",
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_proc_alive_timeout=PROC_ALIVE_TIMEOUT_S,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={**sentinel_options, "visibility_timeout": settings.visibility_timeout_s},
        task_create_missing_queues=True,
    )
    return app

