"""The lightweight webhook worker: ``python -m workers.webhook_worker``.

A Celery worker on its own queue with a thread pool (deliveries wait on the network, not
the CPU). It never imports TensorFlow, so a slow receiver can never hold up inference.
Its unacknowledged messages live under their own Redis keys with a short visibility
timeout, so a killed worker's in-flight deliveries come back within a minute or so.
"""
from __future__ import annotations

import os
import sys

from shared.broker import make_celery
from shared.settings import Settings
from shared.webhooks import WEBHOOK_QUEUE
from workers import signing
from workers.webhook_scheduler import RetrySchedulerStep

settings = Settings.from_env()
app = make_celery(settings)
app.conf.include = ["workers.webhook_tasks"]
app.conf.broker_transport_options = {
    "visibility_timeout": int(2 * settings.webhook_timeout_s + 30),
    "unacked_key": "inferq:webhooks:unacked",
    "unacked_index_key": "inferq:webhooks:unacked_index",
    "unacked_mutex_key": "inferq:webhooks:unacked_mutex",
}
app.steps["worker"].add(RetrySchedulerStep)


def main() -> None:
    """Check the secret, then run Celery's worker on the webhook queue."""
    try:
        signing.secret_key(settings.webhook_secret)
    except ValueError as exc:
        sys.exit(f"webhook worker: {exc} (set INFERQ_WEBHOOK_SECRET)")
    app.worker_main([
        "worker", "--pool", "threads", "--concurrency", str(settings.webhook_concurrency),
        "--queues", WEBHOOK_QUEUE, "--hostname", f"webhooks-{os.getpid()}@%h",
        "--loglevel", settings.log_level.upper(), "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    main()
