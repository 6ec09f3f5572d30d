"""Celery tasks. They receive a job id and delegate to the process's runtime."""
from __future__ import annotations

from celery import shared_task

from shared.celery_message import TaskMessage
from shared.tasks import PREDICT_TASK
from workers.inference import runtime


@shared_task(name=PREDICT_TASK, ignore_result=True, bind=True)
def predict(self, job_id: str) -> None:
    """Run one inference job by id; safe to run twice. Celery hands the message's extra headers
    (the ``traceparent`` the API published the job in) to the task's request."""
    queue = (self.request.delivery_info or {}).get("routing_key") or ""
    runtime.current().run(TaskMessage(job_id, self.request.get("traceparent") or "", queue))
