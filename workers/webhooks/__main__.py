"""Start the webhook worker: ``python -m workers.webhooks``. It never imports TensorFlow,
so a slow receiver can never hold up inference."""
from __future__ import annotations

import os
import sys

from shared.settings import Settings
from shared.tasks import WEBHOOK_QUEUE
from workers.webhooks import signing
from workers.webhooks.app import make_app


def main() -> None:
    """Check the secret, then run Celery's worker on the webhook queue."""
    settings = Settings.from_env()
    try:
        signing.secret_key(settings.webhook_secret)
    except ValueError as exc:
        sys.exit(f"webhook worker: {exc} (set INFERQ_WEBHOOK_SECRET)")
    make_app(settings).worker_main([
        "worker", "--pool", "threads", "--concurrency", str(settings.webhook_concurrency),
        "--queues", WEBHOOK_QUEUE, "--hostname", f"webhooks-{os.getpid()}@%h",
        "--loglevel", settings.log_level.upper(), "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    main()
