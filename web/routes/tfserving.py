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
from shared.errors import NotFound
from shared.signatures import ModelSignature
from web import job_access, submission
from web.body import JSON_MIMETYPE, read_bytes, require_type
from web.services import services

bp = Blueprint("tfserving", __name__)

PREDICT_VALIDATOR = Draft202012Validator(schemas.PREDICT)

TF_SERVING_MIMETYPES = ("", JSON_MIMETYPE, "application/x-www-form-urlencoded", "text/plain")
"""TF Serving reads the body as JSON whatever its type, and its documented example is
``curl -d '{...}'`` (form-encoded by default), so these all count as JSON here."""


@bp.post("/v1/models/<name:model>:predict")
def predict(model: str):
    """Predict with the newest ready version."""
    return _predict(model, _signature(model, None, f"Servable not found for request: {model}"))


@bp.post("/v1/models/<name:model>/versions/<int:version>:predict")
def predict_pinned(model: str, version: int):
    """Predict with exactly ``version``."""
    return _predict(model, _signature(model, version, f"Servable not found for request: Specific({model}, {version})"))


def _signature(model: str, version: int | None, tf_error: str) -> ModelSignature:
    """The version's signature; a 404 that also carries TF Serving's ``error`` member."""
    try:
        return submission.served_signature(model, version)
    except NotFound as missing:
        raise NotFound(missing.detail.split(";")[0], error=tf_error) from None


def _predict(model: str, signature: ModelSignature):
    svc = services()
    if request.mimetype not in TF_SERVING_MIMETYPES:
        require_type(request, (JSON_MIMETYPE,))
    with svc.body_turns.turn(request.content_length):
        data = read_bytes(request, svc.settings.max_body_bytes)
        body = submission.json_body(data, PREDICT_VALIDATOR)
        job = submission.new_job(model, signature)
        submission.set_json_input(job, body, signature, data)
        rows = "instances" in body
        del data, body  # only the job's compact input outlives the turn
    submission.check_rate(job)
    done = submission.queue_and_wait(job, svc.settings.predict_timeout_s)
    job_access.raise_unless_succeeded(done, svc.settings.predict_timeout_s)
    headers = {"Inferq-Job-Id": job.id, "Inferq-Model-Version": done.model_version}
    if rows:
        payload = b'{"predictions":' + (done.predictions_json or b"null") + b"}"
    else:
        payload = orjson.dumps({"outputs": _columns(orjson.loads(done.predictions_json or b"null"))})
    return Response(payload, status=200, mimetype="application/json", headers=headers)


def _columns(rows: list):
    """Row predictions as TF Serving's columnar ``outputs``: a list, or one list per output."""
    if rows and isinstance(rows[0], dict):
        return {name: [row[name] for row in rows] for name in rows[0]}
    return rows
