"""Turning a request into a queued job: build it from the body, then submit it.

Building reads JSON rows or columns, ``.npy`` or image uploads, and the webhook (in the
body, or in headers for binary bodies), validating all of it against the version's
signature before anything is stored. Submitting applies the ``Idempotency-Key``, the key's
rate limit and the model's queue cap, and can wait for the job to end (``Prefer: wait``).
"""
from __future__ import annotations

import functools
import hashlib
import io
import re
from dataclasses import dataclass

import numpy as np
import orjson
from flask import request
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from shared import keys, schemas
from shared.errors import BadRequest, InvalidInput, NotFound, PayloadTooLarge
from shared.jobs import Job, new_job_id
from shared.lanes import MAX_QUEUE_HEADER, PRIORITY_HEADER, parse_max_queue_s, parse_priority
from shared.queue import QueueFull, WaitTooLong
from shared.replication import ReplicasBehind
from shared.signatures import ModelSignature
from shared.ssrf import Network, parse_networks
from shared.tracing.messaging import publishing
from shared.validation import named_inputs, plain_rows_array, validate_array
from shared.webhooks import parse_webhook
from web import idempotency, images
from web.auth import current_owner
from web.backpressure import queue_full, replicas_behind, wait_too_long
from web.body import (
    JSON_MIMETYPE,
    MULTIPART_MIMETYPE,
    NPY_MIMETYPE,
    SUBMIT_MIMETYPES,
    parse_json,
    parse_npy,
    read_bytes,
    require_type,
)
from web.job_access import is_finished, require_job, with_place
from web.services import services
from web.waiter import Watch

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Names a model directory may have; anything else cannot be a served model."""

SUBMIT_VALIDATOR = Draft202012Validator(schemas.SUBMIT)
"""The submit body's schema (also published in /openapi.json); unknown fields are refused."""

DETAIL_LIMIT = 500
"""Longest schema-error detail echoed back (values can be huge)."""


@dataclass(frozen=True)
class Submitted:
    """The job a submit stands for, and whether it was an ``Idempotency-Key`` replay."""

    job: Job
    replayed: bool = False
    announced: bytes | None = None
    """The ended job's JSON as its finish announced it, when it ended within ``Prefer: wait``."""


def served_signature(model: str, version: int | None = None) -> ModelSignature:
    """The signature of the version a job will run on (the newest ready one by default); 404 otherwise."""
    catalog = services().catalog
    if not MODEL_NAME.match(model):
        found = None
    else:
        found = catalog.latest(model) if version is None else catalog.version(model, version)
    if found is None:
        where = "is not served here; GET /v1/models lists the models" if version is None \
            else f"has no version {version} loaded"
        raise NotFound(f"model {model!r} {where}")
    return found


def new_job(model: str, signature: ModelSignature, instances_json: bytes = b"[]") -> Job:
    """A queued job for the request's owner, routed to ``signature``'s version, in the lane and
    with the queue deadline its ``Inferq-Priority`` and ``Inferq-Max-Queue-S`` headers ask for."""
    return Job(id=new_job_id(), model=model, model_version=str(signature.version), owner=current_owner(),
               instances_json=instances_json, priority=parse_priority(request.headers.get(PRIORITY_HEADER)),
               max_queue_s=parse_max_queue_s(request.headers.get(MAX_QUEUE_HEADER), services().settings.job_ttl_s))


def _body_scheduling(job: Job, body: dict) -> None:
    """The body's ``priority`` and ``max_queue_s``, which take the place of the headers'."""
    if "priority" in body:
        job.priority = parse_priority(body["priority"])
    if "max_queue_s" in body:
        job.max_queue_s = parse_max_queue_s(body["max_queue_s"], services().settings.job_ttl_s)


def build_job(model: str, signature: ModelSignature) -> tuple[Job, bytes]:
    """The job the request asks for, and the SHA-256 of the body that identifies the request.

    The body is read and decoded in a turn (``web.body_turns``) and dropped at once: only
    the job's compact input outlives this call, however long the request then waits.
    """
    svc = services()
    with svc.body_turns.turn(request.content_length):
        job = new_job(model, signature)
        mimetype = require_type(request, SUBMIT_MIMETYPES)
        if mimetype == MULTIPART_MIMETYPE:
            data = job.input_npy = _uploaded_images(signature)
        else:
            data = read_bytes(request, svc.settings.max_body_bytes)
        if mimetype == NPY_MIMETYPE:
            validate_array(parse_npy(data), signature, svc.settings.max_instances, svc.settings.max_elements)
            job.input_npy = data
        if mimetype == JSON_MIMETYPE:
            body = json_body(data, SUBMIT_VALIDATOR)
            set_json_input(job, body, signature, data)
            job.webhook = _body_webhook(body)
            _body_scheduling(job, body)
        else:
            job.webhook = _header_webhook()
        return job, hashlib.sha256(data).digest()


def json_body(data: bytes, validator: Draft202012Validator) -> dict:
    """Parse and schema-check a JSON body; 400 when it is not an object, 422 on the schema."""
    body = parse_json(data, services().settings.max_json_values)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object with 'instances' or 'inputs'")
    if _plain_rows(body):
        return body
    problem = best_match(validator.iter_errors(body))
    if problem is not None:
        where = ".".join(str(part) for part in problem.absolute_path) or "body"
        raise InvalidInput(f"{where}: {problem.message}"[:DETAIL_LIMIT])
    return body


def _plain_rows(body: dict) -> bool:
    """``{"instances": [...]}``, the most common body, which every body schema accepts: it
    skips the schema walk, the largest cost of a small submit after the HTTP parsing."""
    instances = body.get("instances")
    return len(body) == 1 and type(instances) is list and len(instances) > 0


def set_json_input(job: Job, body: dict, signature: ModelSignature, data: bytes) -> None:
    """Validate rows or columns against the signature and store what the worker will read:
    plain numeric rows as one ``.npy`` array (the worker loads it without parsing JSON),
    anything else as compact JSON."""
    settings = services().settings
    booleans = b"true" in data or b"false" in data  # numpy would silently turn them into numbers
    array = None if booleans else plain_rows_array(body, signature, settings.max_instances, settings.max_elements)
    if array is not None:
        job.input_npy = npy_bytes(array)
        return
    stored = named_inputs(body, signature, settings.max_instances, settings.max_elements, may_hold_booleans=booleans)
    job.instances_json = orjson.dumps(stored)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _uploaded_images(signature: ModelSignature) -> bytes:
    """Decode the uploaded images into the job's tensor; returns it as ``.npy``."""
    settings = services().settings
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; the limit is {settings.max_body_bytes}")
    uploads = [(f.filename or key, f.read()) for key, f in request.files.items(multi=True)]
    array = images.to_array(uploads, signature, settings.max_image_pixels)
    validate_array(array, signature, settings.max_instances, settings.max_elements)
    return npy_bytes(array)


def _body_webhook(body: dict) -> dict | None:
    if "webhook" not in body:
        return None
    return parse_webhook(body["webhook"], _allowed_networks(services().settings.webhook_allowed_networks)).to_public()


def _header_webhook() -> dict | None:
    """A binary body has no room for the webhook: it comes in headers instead."""
    url = request.headers.get("Inferq-Webhook-Url")
    if url is None:
        return None
    events = request.headers.get("Inferq-Webhook-Events", "completed")
    spec = {"url": url, "events": [e.strip() for e in events.split(",")]}
    return parse_webhook(spec, _allowed_networks(services().settings.webhook_allowed_networks)).to_public()


@functools.cache
def _allowed_networks(text: str) -> tuple[Network, ...]:
    """``INFERQ_WEBHOOK_ALLOWED_NETWORKS`` parsed once per process."""
    return tuple(parse_networks(text))


def submit(job: Job, body_digest: bytes, pinned_version: int | None, wait_s: float) -> Submitted:
    """Idempotency, then rate limit, then queue (waiting up to ``wait_s`` for the job to end)."""
    svc = services()
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        webhook_headers = {k: v for k, v in request.headers.items() if k.lower().startswith("inferq-webhook")}
        fingerprint = idempotency.request_hash(job.model, pinned_version, body_digest, webhook_headers)
        earlier = idempotency.claim(svc.redis, key, job.owner, job.id, fingerprint, svc.settings.job_ttl_s)
        if earlier is not None:
            return Submitted(with_place(require_job(earlier)), replayed=True)
    try:
        check_rate(job)  # after the idempotency check: a replay is answered even when full
        watch = queue_and_watch(job, wait_s)
        if watch is not None and watch.announced is not None:
            return Submitted(job, announced=watch.announced)
        return Submitted(job if watch is None else with_place(require_job(job.id)))
    except Exception:
        if key is not None:
            idempotency.release(svc.redis, key, job.owner)
        raise


def check_rate(job: Job) -> None:
    """429 when the key is over its rate (the queue cap is checked as the job is stored)."""
    services().rate_limiter.check(job.owner, job.created_at)


def queue_and_wait(job: Job, wait_s: float) -> Job:
    """Store and queue ``job``; with ``wait_s``, the job as it is once it ended or the wait ran out."""
    watch = queue_and_watch(job, wait_s)
    return job if watch is None else with_place(require_job(job.id))


def queue_and_watch(job: Job, wait_s: float) -> Watch | None:
    """Store and queue ``job``; with ``wait_s``, wait up to that long for it to end and return
    the watch, which holds the ended job's JSON when its finish announced it."""
    if not wait_s:
        _enqueue(job)
        return None
    waiter = services().waiter
    with waiter.watching(job.id) as watch:
        _enqueue(job)
        waiter.wait_on(watch, wait_s, is_finished(job.id), check_first=False)
    return watch


def _enqueue(job: Job) -> None:
    """Store and queue ``job`` (in its publish span, when traced) and note where it stands, or 503
    with ``Retry-After`` when its model's queue is full or its wait would exceed its ``max_queue_s``."""
    svc = services()
    try:
        with publishing(job, keys.queue(job.model)):
            job.queue = svc.queue.submit(job).to_public()
    except QueueFull as full:
        raise queue_full(svc.redis, full, svc.settings.max_queued_per_model, job.created_at) from None
    except WaitTooLong as slow:
        raise wait_too_long(slow) from None
    except ReplicasBehind as behind:
        raise replicas_behind(behind) from None
