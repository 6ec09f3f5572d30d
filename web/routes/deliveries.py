"""Webhook delivery log of a job, and redelivery of its terminal event."""
from __future__ import annotations

import orjson
from flask import Blueprint

from shared import keys, webhooks
from web import job_access
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("deliveries", __name__)


@bp.get("/v1/jobs/<job_id>/deliveries")
def list_deliveries(job_id: str):
    """Every delivery attempt: time, URL, status code or error, duration, attempt number."""
    job = job_access.require_job(job_id)
    attempts = [orjson.loads(raw) for raw in services().redis.lrange(keys.deliveries(job_id), 0, -1)]
    return json_response({"job_id": job_id, "webhook": job.webhook, "deliveries": attempts})


@bp.post("/v1/jobs/<job_id>/deliveries/redeliver")
def redeliver(job_id: str):
    """Send the terminal event again, under the same ``webhook-id``."""
    delivery = job_access.redeliver_completed(job_id)
    return json_response({"job_id": job_id, "event": delivery.event.value,
                          "webhook_id": webhooks.webhook_id(job_id, delivery.event)}, status=202)
