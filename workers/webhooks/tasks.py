"""The webhook worker's task: one delivery attempt of one event."""
from __future__ import annotations

from celery import shared_task

from shared import redis_connection
from shared.settings import Settings
from shared.tasks import DELIVER_TASK
from workers.webhooks.delivery import Deliverer

_deliverer: Deliverer | None = None


def deliverer() -> Deliverer:
    """This process's deliverer, built on first use."""
    global _deliverer
    if _deliverer is None:
        settings = Settings.from_env()
        _deliverer = Deliverer(settings, redis_connection.connect(settings, socket_timeout=10))
    return _deliverer


@shared_task(name=DELIVER_TASK, ignore_result=True)
def deliver_webhook(job_id: str, event: str, msg_id: str, attempt: int) -> None:
    """Send ``event`` for ``job_id``; retries are scheduled in Redis, never raised."""
    deliverer().deliver(job_id, event, msg_id, attempt)
