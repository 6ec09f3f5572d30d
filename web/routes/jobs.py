"""Job routes: submit a job to a model's queue, read (or long-poll) it, cancel it."""
from __future__ import annotations

from flask import Blueprint, Response, request

from shared.jobs import Job
from web import job_access, submission
from web.body import prefer_wait, wait_seconds
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("jobs", __name__)


@bp.post("/v1/models/<name:model>/jobs")
def submit(model: str):
    """Validate instances against the newest version's signature, then store and queue the job."""
    return _submit(model, None)


@bp.post("/v1/models/<name:model>/versions/<int:version>/jobs")
def submit_pinned(model: str, version: int):
    """Like ``submit``, but served by exactly ``version``."""
    return _submit(model, version)


def _submit(model: str, version: int | None):
    job, body_digest = submission.build_job(model, submission.served_signature(model, version))
    wait_s = prefer_wait(request.headers.get("Prefer"), services().settings.wait_cap_s)
    submitted = submission.submit(job, body_digest, version, wait_s)
    if submitted.announced is not None:  # it ended within the wait: answer the finish's own JSON
        response = Response(submitted.announced, status=200, mimetype="application/json",
                            headers={"Location": f"/v1/jobs/{job.id}"})
    else:
        response = _job_response(submitted.job, created=True)
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if submitted.job.traceparent:  # the job's trace: the client's, or the one the API started
        response.headers["traceparent"] = submitted.job.traceparent
    return response


@bp.get("/v1/jobs/<job_id>")
def get_job(job_id: str):
    """The job; with ``?wait=S`` block up to S seconds (capped) until it is terminal."""
    wait_s = wait_seconds(request.args.get("wait"), services().settings.wait_cap_s)
    return Response(job_access.wait_for_job_json(job_id, wait_s), status=200, mimetype="application/json")


@bp.delete("/v1/jobs/<job_id>")
def cancel_job(job_id: str):
    """Cancel a queued or running job; 409 once it has finished."""
    return json_response(job_access.cancel_job(job_id).to_public())


def _job_response(job: Job, created: bool):
    headers = {"Location": f"/v1/jobs/{job.id}"} if created else {}
    status = 202 if created and not job.status.is_terminal() else 200
    return json_response(job.to_public(), status=status, headers=headers)
