"""The inference worker process: Celery app, batching consumer, model registry and the one job path."""
