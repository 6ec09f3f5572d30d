"""Inference workers: the Celery app, model loading, compiled inference and the predict task."""
