"""Webhook delivery log of a job, and redelivery of its terminal event."""
from __future__ import annotations

import orjson
from flask import Blueprint

from shared import keys, webhooks
from shared.errors import Conflict
from web.routes.jobs import require_job
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("deliveries", __name__)


@bp.get("/v1/jobs/<job_id>/deliveries")
def list_deliveries(job_id: str):
    """Every delivery attempt: time, URL, status code or error, duration, attempt number."""
    svc = services()
    job = require_job(job_id)
    attempts = [orjson.loads(raw) for raw in svc.redis.lrange(keys.deliveries(job_id), 0, -1)]
    return json_response({"job_id": job_id, "webhook": job.webhook, "deliveries": attempts})


@bp.post("/v1/jobs/<job_id>/deliveries/redeliver")
def redeliver(job_id: str):
    """Send the terminal event again, under the same ``webhook-id``."""
    svc = services()
    job = require_job(job_id)
    if job.webhook is None:
        raise Conflict("the job has no webhook")
    if not job.status.is_terminal():
        raise Conflict(f"the job is {job.status.value}; only a finished job's event can be redelivered")
    svc.redis.lpush(webhooks.WEBHOOK_QUEUE, webhooks.delivery_message(job_id, "completed"))
    return json_response({"job_id": job_id, "event": "completed",
                          "webhook_id": webhooks.webhook_id(job_id, "completed")}, status=202)
