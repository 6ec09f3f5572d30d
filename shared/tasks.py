"""Task and queue names that web and workers agree on; plain strings, so ``shared`` needs no Celery."""
from __future__ import annotations

PREDICT_TASK = "inferq.predict"
"""Name of the task that runs one job; its only argument is the job id."""

DELIVER_TASK = "inferq.deliver_webhook"
"""Task that sends one webhook event; arguments: job id, event, webhook id, attempt."""

WEBHOOK_QUEUE = "inferq.webhooks"
"""Celery queue of the lightweight webhook worker (no TensorFlow)."""
