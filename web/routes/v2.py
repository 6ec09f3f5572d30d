"""The Open Inference Protocol (v2, KServe / Triton) over HTTP, on top of the queue.

Errors keep inferq's problem+json shape and also carry the protocol's ``error`` member,
which v2 clients (tritonclient, kserve) read.
"""
from __future__ import annotations

from flask import Blueprint, Response

from shared.jobs import Job
from web import inference_protocol as protocol
from web.oip import HEADER_LENGTH
from web.routes.responses import json_response

bp = Blueprint("v2", __name__)


@bp.get("/v2")
def server_metadata():
    """Name, version and the extensions implemented (``binary_tensor_data``)."""
    return json_response(protocol.server_metadata())


@bp.get("/v2/health/live")
def live():
    """The process serves requests."""
    return json_response({"live": True})


@bp.get("/v2/health/ready")
def ready():
    """Redis answers and some model is loaded; 400 with ``ready: false`` otherwise."""
    return json_response(protocol.server_ready())


@bp.get("/v2/models/<name:model>")
def model_metadata(model: str):
    """The newest version's tensors, and every ready version."""
    return json_response(protocol.model_metadata(model, None))


@bp.get("/v2/models/<name:model>/versions/<int:version>")
def version_metadata(model: str, version: int):
    """One version's tensors."""
    return json_response(protocol.model_metadata(model, version))


@bp.get("/v2/models/<name:model>/ready")
def model_ready(model: str):
    """The newest version is loaded."""
    return json_response(protocol.model_ready(model, None))


@bp.get("/v2/models/<name:model>/versions/<int:version>/ready")
def version_ready(model: str, version: int):
    """That version is loaded."""
    return json_response(protocol.model_ready(model, version))


@bp.post("/v2/models/<name:model>/infer")
def infer(model: str):
    """Infer with the newest ready version (JSON or binary tensors)."""
    return _answer(protocol.infer(model, None))


@bp.post("/v2/models/<name:model>/versions/<int:version>/infer")
def infer_pinned(model: str, version: int):
    """Infer with exactly ``version``."""
    return _answer(protocol.infer(model, version))


def _answer(result: protocol.Answered | Job) -> Response:
    if isinstance(result, Job):  # Prefer: respond-async
        return json_response(result.to_public(), status=202, headers={"Location": f"/v1/jobs/{result.id}"})
    if result.header_length is None:
        return Response(result.body, status=200, mimetype="application/json")
    return Response(result.body, status=200, mimetype="application/octet-stream",
                    headers={HEADER_LENGTH: str(result.header_length)})
