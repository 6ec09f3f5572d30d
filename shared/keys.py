"""Every Redis key inferq uses, in one place (the README documents this schema).

All keys share the ``inferq:`` prefix so an operator can find, count or delete them.
"""
from __future__ import annotations

PREFIX = "inferq"

JOB_FINISHED_CHANNEL = f"{PREFIX}:events:job-finished"
"""Pub/sub channel carrying the id of every job that reached a terminal state."""

MODELS_SET = f"{PREFIX}:models"
"""Set of model names some worker has loaded and published."""

METRICS_SUBMITTED = f"{PREFIX}:metrics:submitted"
"""Hash: model -> jobs submitted."""

METRICS_FINISHED = f"{PREFIX}:metrics:finished"
"""Hash: ``model|status`` -> jobs that ended in that status."""


def job(job_id: str) -> str:
    """Hash holding one job record; expires after ``INFERQ_JOB_TTL_S``."""
    return f"{PREFIX}:job:{job_id}"


def model(name: str) -> str:
    """Hash: version -> JSON signature published by the worker that loaded it."""
    return f"{PREFIX}:model:{name}"


def latency_histogram(model_name: str) -> str:
    """Hash of job latency bucket counts (plus ``sum`` and ``count``) for one model."""
    return f"{PREFIX}:metrics:latency:{model_name}"


def queue(model_name: str) -> str:
    """Celery queue (a Redis list) feeding one model's workers."""
    return f"{PREFIX}.{model_name}"
