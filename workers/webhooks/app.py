"""The webhook worker's Celery app: its own queue, a thread pool, the retry scheduler and the
sweep that expires jobs past their ``max_queue_s``.

Deliveries wait on the network, not the CPU, so threads serve them. Its unacknowledged
messages live under their own Redis keys with a short visibility timeout, so a killed
worker's in-flight deliveries come back within a minute or so.
"""
from __future__ import annotations

from celery import Celery

from shared import tracing
from shared.settings import Settings
from workers.celery_config import make_celery
from workers.webhooks.deadline_sweep import DeadlineSweepStep
from workers.webhooks.scheduler import RetrySchedulerStep


def make_app(settings: Settings) -> Celery:
    """The Celery app of the webhook worker; tracing starts here (its thread pool never forks)."""
    tracing.init(tracing.Service.WEBHOOKS)
    app = make_celery(settings)
    app.conf.include = ["workers.webhooks.tasks"]
    app.conf.inferq_settings = settings
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "visibility_timeout": int(2 * settings.webhook_timeout_s + 30),
        "unacked_key": "inferq:webhooks:unacked",
        "unacked_index_key": "inferq:webhooks:unacked_index",
        "unacked_mutex_key": "inferq:webhooks:unacked_mutex",
    }
    app.steps["worker"].add(RetrySchedulerStep)
    app.steps["worker"].add(DeadlineSweepStep)
    return app
