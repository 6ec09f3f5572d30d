"""Job routes: submit a job to a model's queue, and read (or long-poll) a job."""
from __future__ import annotations

import re

import orjson
from flask import Blueprint, request

from shared.errors import InvalidInput, NotFound
from shared.jobs import Job, new_job_id
from shared.webhooks import parse_webhook
from shared.validation import extract_instances, validate_array, validate_instances
from web.body import (NPY_MIMETYPE, SUBMIT_MIMETYPES, parse_json, parse_npy, prefer_wait, read_bytes,
                      require_type, wait_seconds)
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("jobs", __name__)

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Names a model directory may have; anything else cannot be a served model."""

SUBMIT_FIELDS = frozenset({"instances", "webhook"})
"""Top-level body fields a submit accepts; others are rejected so typos do not pass silently."""


@bp.post("/v1/models/<model>/jobs")
def submit(model: str):
    """Validate instances against the model's signature, then store and queue the job at once."""
    svc = services()
    signature = svc.catalog.latest(model) if MODEL_NAME.match(model) else None
    if signature is None:
        raise NotFound(f"model {model!r} is not served here; GET /v1/models lists the models")
    job = Job(id=new_job_id(), model=model, model_version=str(signature.version))
    mimetype = require_type(request, SUBMIT_MIMETYPES)
    data = read_bytes(request, svc.settings.max_body_bytes)
    if mimetype == NPY_MIMETYPE:
        validate_array(parse_npy(data), signature, svc.settings.max_instances, svc.settings.max_elements)
        job.input_npy = data
        # A binary body has no room for the webhook: it comes in headers instead.
        url = request.headers.get("Inferq-Webhook-Url")
        if url is not None:
            events = request.headers.get("Inferq-Webhook-Events", "completed")
            job.webhook = parse_webhook({"url": url, "events": [e.strip() for e in events.split(",")]}).to_public()
    else:
        job.instances_json, job.webhook = _json_instances(data, signature)
    wait = prefer_wait(request.headers.get("Prefer"), svc.settings.wait_cap_s)
    if not wait:
        svc.queue.submit(job)
        return _job_response(job, created=True)
    with svc.waiter.watching(job.id) as finished:
        svc.queue.submit(job)
        svc.waiter.wait_on(finished, wait, _is_finished(job.id), check_first=False)
    return _job_response(require_job(job.id), created=True)


@bp.get("/v1/jobs/<job_id>")
def get_job(job_id: str):
    """The job; with ``?wait=S`` block up to S seconds (capped) until it is terminal."""
    svc = services()
    wait = wait_seconds(request.args.get("wait"), svc.settings.wait_cap_s)
    return _job_response(_await(job_id, wait), created=False)


def _json_instances(data: bytes, signature) -> tuple[bytes, dict | None]:
    """Validate a JSON body; returns its instances re-encoded for the worker, and its webhook."""
    settings = services().settings
    body = parse_json(data)
    instances = extract_instances(body)
    unknown = sorted(set(body) - SUBMIT_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown field(s) in the body: {', '.join(unknown)}")
    webhook = parse_webhook(body["webhook"]).to_public() if "webhook" in body else None
    validate_instances(instances, signature, settings.max_instances, settings.max_elements,
                       may_hold_booleans=b"true" in data or b"false" in data)
    return orjson.dumps(instances), webhook


def _await(job_id: str, wait_s: float) -> Job:
    if wait_s > 0:
        services().waiter.wait(job_id, wait_s, _is_finished(job_id))
    return require_job(job_id)


def _is_finished(job_id: str):
    store = services().store

    def finished() -> bool:
        status = store.get_status(job_id)
        return status is None or status.is_terminal()

    return finished


def require_job(job_id: str) -> Job:
    """The job as readers see it, or 404."""
    job = services().store.get_public(job_id)
    if job is None:
        raise NotFound(f"job {job_id!r} does not exist or has expired")
    return job


def _job_response(job: Job, created: bool):
    headers = {"Location": f"/v1/jobs/{job.id}"} if created else {}
    status = 202 if created and not job.status.is_terminal() else 200
    return json_response(job.to_public(), status=status, headers=headers)

