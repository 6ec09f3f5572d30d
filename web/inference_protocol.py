"""The Open Inference Protocol (v2) served from the queue: metadata, readiness and infer.

An infer call is a job like any other: validated against the signature the workers
published, queued, batched with the rest, recorded with its version and timings, and
awaited up to ``INFERQ_PREDICT_TIMEOUT_S`` as ``:predict`` is. ``Prefer: respond-async`` (or
``Prefer: wait=0``) is what a queue adds to the protocol: 202 with the job's ``Location``.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import orjson
from flask import request

from shared.errors import BadRequest, NotFound
from shared.jobs import Job
from shared.signatures import ModelSignature
from shared.validation import named_inputs, validate_array
from web import job_access, model_info, oip, submission
from web.body import read_bytes
from web.services import services

SERVER_NAME = "inferq"
SERVER_VERSION = "1"
EXTENSIONS = ["binary_tensor_data"]
"""What ``GET /v2`` lists: Triton's binary tensor extension is the one implemented."""

PLATFORMS = {"saved_model": "tensorflow_savedmodel", "keras": "tensorflow_keras", "h5": "tensorflow_keras"}
"""The model format a worker loaded -> the platform name v2 clients see."""

RESPOND_ASYNC = re.compile(r"(?:^|[;,\s])(respond-async|wait\s*=\s*0+(?:\.0+)?)(?:$|[;,\s])", re.IGNORECASE)


class NotReady(BadRequest):
    """The server or model is not ready: the protocol answers false with a 4xx."""

    slug = "not-ready"
    title = "Not ready"


@dataclass(frozen=True)
class Answered:
    """A finished infer call: the body, and its JSON header's length when binary tensors follow."""

    body: bytes
    header_length: int | None


def server_metadata() -> dict:
    return {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": EXTENSIONS}


def server_ready() -> dict:
    """Ready when Redis answers and some worker has loaded a model."""
    if not model_info.loaded_models():
        raise NotReady("no model has been loaded by a worker yet", ready=False)
    return {"ready": True}


def model_ready(model: str, version: int | None) -> dict:
    """Ready when the version (the newest by default) is loaded; 404 for one no worker knows."""
    catalog = services().catalog
    ready = catalog.latest(model) if version is None else catalog.version(model, version)
    if ready is not None:
        return {"name": model, "ready": True}
    states = catalog.states(model)
    if not states:
        raise NotFound(f"model {model!r} is not served here")
    if version is not None and version not in states:
        raise NotFound(f"model {model!r} has no version {version}")
    what = "has no ready version" if version is None else f"version {version} is not ready"
    raise NotReady(f"model {model!r} {what}", name=model, ready=False)


def model_metadata(model: str, version: int | None) -> dict:
    """Name, versions, platform and tensors, from the signatures the workers published."""
    signature = submission.served_signature(model, version)
    versions = [signature] if version is not None else services().catalog.versions(model)
    return {"name": model, "versions": [str(v.version) for v in versions],
            "platform": PLATFORMS.get(str(signature.config.get("format", "keras")), "tensorflow_keras"),
            "inputs": [oip.tensor_metadata(spec) for spec in signature.inputs],
            "outputs": [oip.tensor_metadata(spec) for spec in signature.outputs]}


def infer(model: str, version: int | None) -> Answered | Job:
    """Run one infer call as a job; the answer, or the queued job when the client asked not to wait."""
    svc = services()
    signature = submission.served_signature(model, version)
    with svc.body_turns.turn(request.content_length):
        header, tail = oip.split_body(read_bytes(request, svc.settings.max_body_bytes),
                                      request.headers.get(oip.HEADER_LENGTH), svc.settings.max_json_values)
        parsed = oip.parse_request(header, tail, signature, svc.settings.max_instances, svc.settings.max_elements)
        job = _job_for(parsed, model, signature)
        parsed = dataclasses.replace(parsed, inputs=[])  # only the job's compact input outlives the turn
        del header, tail
    submission.check_rate(job)
    if RESPOND_ASYNC.search(request.headers.get("Prefer", "")):
        return submission.queue_and_wait(job, 0)
    done = submission.queue_and_wait(job, svc.settings.predict_timeout_s)
    job_access.raise_unless_succeeded(done, svc.settings.predict_timeout_s)
    arrays = oip.output_arrays(done.predictions_json or b"[]", signature)
    return Answered(*oip.encode_response(parsed, signature, arrays, done.id))


def _job_for(parsed: oip.InferRequest, model: str, signature: ModelSignature) -> Job:
    """The job's stored input: one ``.npy`` array for a single-input model, named columns otherwise."""
    settings = services().settings
    if len(signature.inputs) == 1:
        array = parsed.inputs[0].array
        validate_array(array, signature, settings.max_instances, settings.max_elements)
        job = submission.new_job(model, signature)
        job.input_npy = submission.npy_bytes(array)
        return job
    columns = {tensor.name: tensor.array.tolist() for tensor in parsed.inputs}
    stored = named_inputs({"inputs": columns}, signature, settings.max_instances, settings.max_elements,
                          may_hold_booleans=False)
    return submission.new_job(model, signature, orjson.dumps(stored))
