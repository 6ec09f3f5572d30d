"""TF Serving's REST predict API on top of the queue, so its clients can point here unchanged.

``POST /v1/models/{name}[/versions/{v}]:predict`` takes ``{"instances": ...}`` (rows) or
``{"inputs": ...}`` (columns), runs it as an ordinary job (batched with everything else),
waits up to ``INFERQ_PREDICT_TIMEOUT_S`` and answers ``{"predictions": ...}`` or
``{"outputs": ...}``. Errors are problem+json that also carry TF Serving's ``error`` member.
"""
from __future__ import annotations

import orjson
from flask import Blueprint, Response, request
from jsonschema import Draft202012Validator

from shared import schemas
from shared.errors import Conflict, GatewayTimeout, ModelFailed, NotFound
from shared.jobs import Job, JobStatus, new_job_id
from web.auth import current_owner
from web.body import JSON_MIMETYPE, read_bytes, require_type
from web.routes.jobs import MODEL_NAME, admit, enqueue, is_finished, json_body, json_inputs
from web.services import services

bp = Blueprint("tfserving", __name__)

PREDICT_VALIDATOR = Draft202012Validator(schemas.PREDICT)

TF_SERVING_MIMETYPES = ("", JSON_MIMETYPE, "application/x-www-form-urlencoded", "text/plain")
"""TF Serving reads the body as JSON whatever its type, and its documented example is
``curl -d '{...}'`` (form-encoded by default), so these all count as JSON here."""


@bp.post("/v1/models/<name:model>:predict")
def predict(model: str):
    """Predict with the newest ready version."""
    signature = services().catalog.latest(model) if MODEL_NAME.match(model) else None
    if signature is None:
        raise NotFound(f"model {model!r} is not served here", error=f"Servable not found for request: {model}")
    return _predict(model, signature)


@bp.post("/v1/models/<name:model>/versions/<int:version>:predict")
def predict_pinned(model: str, version: int):
    """Predict with exactly ``version``."""
    signature = services().catalog.version(model, version) if MODEL_NAME.match(model) else None
    if signature is None:
        raise NotFound(f"model {model!r} has no version {version} loaded",
                       error=f"Servable not found for request: Specific({model}, {version})")
    return _predict(model, signature)


def _predict(model: str, signature):
    svc = services()
    if request.mimetype not in TF_SERVING_MIMETYPES:
        require_type(request, (JSON_MIMETYPE,))
    data = read_bytes(request, svc.settings.max_body_bytes)
    body = json_body(data, PREDICT_VALIDATOR)
    job = Job(id=new_job_id(), model=model, model_version=str(signature.version), owner=current_owner(),
              instances_json=json_inputs(body, signature, data))
    admit(job)
    with svc.waiter.watching(job.id) as finished:
        enqueue(job)
        svc.waiter.wait_on(finished, svc.settings.predict_timeout_s, is_finished(job.id), check_first=False)
    done = svc.store.get_public(job.id)
    location = f"/v1/jobs/{job.id}"
    if done is None or not done.status.is_terminal():
        raise GatewayTimeout(f"job {job.id} did not finish within {svc.settings.predict_timeout_s:g} s; "
                             f"it is still {done.status.value if done else 'unknown'}: poll {location}",
                             error="Deadline exceeded", job_id=job.id, location=location)
    if done.status is JobStatus.CANCELED:
        raise Conflict(f"job {job.id} was canceled", error="Cancelled", job_id=job.id)
    if done.status is JobStatus.FAILED:
        message = f"{done.error.get('type')}: {done.error.get('message')}" if done.error else "failed"
        raise ModelFailed(message, error=message, job_id=job.id)
    headers = {"Inferq-Job-Id": job.id, "Inferq-Model-Version": done.model_version}
    if "instances" in body:
        payload = b'{"predictions":' + done.predictions_json + b"}"
    else:
        payload = orjson.dumps({"outputs": _columns(orjson.loads(done.predictions_json))})
    return Response(payload, status=200, mimetype="application/json", headers=headers)


def _columns(rows: list):
    """Row predictions as TF Serving's columnar ``outputs``: a list, or one list per output."""
    if rows and isinstance(rows[0], dict):
        return {name: [row[name] for row in rows] for name in rows[0]}
    return rows
