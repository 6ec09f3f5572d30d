"""Celery tasks. They receive a job id and delegate to the process's runtime."""
from __future__ import annotations

from celery import shared_task

from shared.tasks import PREDICT_TASK
from workers.inference import runtime


@shared_task(name=PREDICT_TASK, ignore_result=True)
def predict(job_id: str) -> None:
    """Run one inference job by id; safe to run twice."""
    runtime.current().run(job_id)
