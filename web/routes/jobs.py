"""Job routes: submit a job to a model's queue, and read (or long-poll) a job."""
from __future__ import annotations

import io
import re

import numpy as np
import orjson
from flask import Blueprint, request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from shared import schemas
from shared.errors import BadRequest, Conflict, InvalidInput, NotFound, PayloadTooLarge
from shared.jobs import Job, new_job_id
from shared.queue import QueueFull
from shared.validation import named_inputs, validate_array
from shared.webhooks import parse_webhook
from web import idempotency, images
from web.backpressure import queue_full
from web.body import (JSON_MIMETYPE, MULTIPART_MIMETYPE, NPY_MIMETYPE, SUBMIT_MIMETYPES, parse_json,
                      parse_npy, prefer_wait, read_bytes, require_type, wait_seconds)
from web.auth import current_owner
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("jobs", __name__)

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Names a model directory may have; anything else cannot be a served model."""

SUBMIT_VALIDATOR = Draft202012Validator(schemas.SUBMIT)
"""The submit body's schema (also published in /openapi.json); unknown fields are refused."""

DETAIL_LIMIT = 500
"""Longest schema-error detail echoed back (values can be huge)."""


@bp.post("/v1/models/<name:model>/jobs")
def submit(model: str):
    """Validate instances against the newest version's signature, then store and queue the job."""
    svc = services()
    signature = svc.catalog.latest(model) if MODEL_NAME.match(model) else None
    if signature is None:
        raise NotFound(f"model {model!r} is not served here; GET /v1/models lists the models")
    return _submit(model, signature)


@bp.post("/v1/models/<name:model>/versions/<int:version>/jobs")
def submit_pinned(model: str, version: int):
    """Like ``submit``, but served by exactly ``version``."""
    svc = services()
    found = svc.catalog.version(model, version) if MODEL_NAME.match(model) else None
    if found is None:
        raise NotFound(f"model {model!r} has no version {version} loaded")
    return _submit(model, found)


def _submit(model: str, signature):
    svc = services()
    job = Job(id=new_job_id(), model=model, model_version=str(signature.version), owner=current_owner())
    mimetype = require_type(request, SUBMIT_MIMETYPES)
    if mimetype == MULTIPART_MIMETYPE:
        data = _image_job(job, signature)
    else:
        data = read_bytes(request, svc.settings.max_body_bytes)
    if mimetype == NPY_MIMETYPE:
        validate_array(parse_npy(data), signature, svc.settings.max_instances, svc.settings.max_elements)
        job.input_npy = data
        job.webhook = _header_webhook()
    elif mimetype == JSON_MIMETYPE:
        body = json_body(data, SUBMIT_VALIDATOR)
        job.instances_json = json_inputs(body, signature, data)
        job.webhook = parse_webhook(body["webhook"]).to_public() if "webhook" in body else None
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        webhook_headers = {k: v for k, v in request.headers.items() if k.lower().startswith("inferq-webhook")}
        fingerprint = idempotency.request_hash(model, request.path, data, webhook_headers)
        earlier = idempotency.claim(svc.redis, key, job.owner, job.id, fingerprint, svc.settings.job_ttl_s)
        if earlier is not None:
            response = _job_response(require_job(earlier), created=True)
            response.headers["Idempotent-Replayed"] = "true"
            return response
    try:
        admit(job)  # after the idempotency check: a replay is answered even when full
        return _queue_and_answer(job)
    except Exception:
        if key is not None:
            idempotency.release(svc.redis, key, job.owner)
        raise


def admit(job: Job) -> None:
    """429 when the key is over its rate (the queue cap is checked as the job is stored)."""
    services().rate_limiter.check(job.owner, job.created_at)


def enqueue(job: Job) -> None:
    """Store and queue ``job``, or 503 with ``Retry-After`` when its model's queue is full."""
    svc = services()
    try:
        svc.queue.submit(job)
    except QueueFull as full:
        raise queue_full(svc.redis, full, svc.settings.max_queued_per_model, job.created_at) from None


def _header_webhook() -> dict | None:
    """A binary body has no room for the webhook: it comes in headers instead."""
    url = request.headers.get("Inferq-Webhook-Url")
    if url is None:
        return None
    events = request.headers.get("Inferq-Webhook-Events", "completed")
    return parse_webhook({"url": url, "events": [e.strip() for e in events.split(",")]}).to_public()


def _queue_and_answer(job: Job):
    svc = services()
    wait = prefer_wait(request.headers.get("Prefer"), svc.settings.wait_cap_s)
    if not wait:
        enqueue(job)
        return _job_response(job, created=True)
    with svc.waiter.watching(job.id) as finished:
        enqueue(job)
        svc.waiter.wait_on(finished, wait, is_finished(job.id), check_first=False)
    return _job_response(require_job(job.id), created=True)


@bp.get("/v1/jobs/<job_id>")
def get_job(job_id: str):
    """The job; with ``?wait=S`` block up to S seconds (capped) until it is terminal."""
    svc = services()
    wait = wait_seconds(request.args.get("wait"), svc.settings.wait_cap_s)
    return _job_response(_await(job_id, wait), created=False)


def json_body(data: bytes, validator) -> dict:
    """Parse and schema-check a JSON body; 400 when it is not an object, 422 on the schema."""
    body = parse_json(data)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with 'instances' or 'inputs'")
    problem = best_match(validator.iter_errors(body))
    if problem is not None:
        where = ".".join(str(part) for part in problem.absolute_path) or "body"
        raise InvalidInput(f"{where}: {problem.message}"[:DETAIL_LIMIT])
    return body


def json_inputs(body: dict, signature, data: bytes) -> bytes:
    """Validate rows or columns against the signature; the JSON the worker will read."""
    settings = services().settings
    stored = named_inputs(body, signature, settings.max_instances, settings.max_elements,
                          may_hold_booleans=b"true" in data or b"false" in data)
    return orjson.dumps(stored)


def _image_job(job: Job, signature) -> bytes:
    """Decode the uploaded images into the job's tensor (stored as .npy); returns the .npy."""
    svc = services()
    if request.content_length is not None and request.content_length > svc.settings.max_body_bytes:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; "
                              f"the limit is {svc.settings.max_body_bytes}")
    uploads = [(f.filename or key, f.read()) for key, f in request.files.items(multi=True)]
    array = images.to_array(uploads, signature)
    validate_array(array, signature, svc.settings.max_instances, svc.settings.max_elements)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    job.input_npy = buffer.getvalue()
    job.webhook = _header_webhook()
    return job.input_npy


@bp.delete("/v1/jobs/<job_id>")
def cancel_job(job_id: str):
    """Cancel a queued or running job; 409 once it has finished."""
    job = require_job(job_id)
    if job.status.is_terminal() or not services().store.cancel(job):
        raise Conflict(f"job {job_id} has already finished ({require_job(job_id).status.value})")
    return json_response(require_job(job_id).to_public())


def _await(job_id: str, wait_s: float) -> Job:
    job = require_job(job_id)  # 404 at once for unknown ids and other keys' jobs
    if wait_s <= 0 or job.status.is_terminal():
        return job
    services().waiter.wait(job_id, wait_s, is_finished(job_id))
    return require_job(job_id)


def is_finished(job_id: str):
    store = services().store

    def finished() -> bool:
        status = store.get_status(job_id)
        return status is None or status.is_terminal()

    return finished


def require_job(job_id: str) -> Job:
    """The job as its owner sees it; 404 when it does not exist or belongs to another key."""
    job = services().store.get_public(job_id)
    if job is None or job.owner != current_owner():
        raise NotFound(f"job {job_id!r} does not exist or has expired")
    return job


def _job_response(job: Job, created: bool):
    headers = {"Location": f"/v1/jobs/{job.id}"} if created else {}
    status = 202 if created and not job.status.is_terminal() else 200
    return json_response(job.to_public(), status=status, headers=headers)

