"""Turns every error into ``application/problem+json`` (RFC 9457), never an HTML page."""
from __future__ import annotations

import logging

import orjson
import redis
from flask import Flask, Response, has_request_context, request
from werkzeug.exceptions import HTTPException

from shared.errors import InferqError, Unauthorized, Unavailable

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"


V2_PREFIX = "/v2"
"""Open Inference Protocol routes: their clients read the message from an ``error`` member."""


def problem_response(error: InferqError) -> Response:
    """The HTTP response for one of our errors."""
    problem = error.to_problem()
    if has_request_context() and request.path.startswith(V2_PREFIX):
        problem.setdefault("error", problem["detail"])
    response = Response(orjson.dumps(problem), status=error.status, mimetype=PROBLEM_MIMETYPE)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if error.extra.get("location"):
        response.headers["Location"] = error.extra["location"]
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="inferq"'

    return response


def init_app(app: Flask) -> None:
    """Register handlers for our errors, Werkzeug's, an unreachable Redis, and anything unexpected."""

    @app.errorhandler(InferqError)
    def handle_inferq(error: InferqError):
        return problem_response(error)

    @app.errorhandler(HTTPException)
    def handle_http(error: HTTPException):
        generic = InferqError(error.description or error.name)
        generic.status, generic.title = error.code or 500, error.name
        generic.slug = error.name.lower().replace(" ", "-")
        response = problem_response(generic)
        for name, value in error.get_headers():
            if name.lower() == "allow":
                response.headers["Allow"] = value
        return response

    @app.errorhandler(redis.exceptions.ResponseError)
    def handle_redis_refusal(error: redis.exceptions.ResponseError):
        # Redis at its maxmemory (noeviction) refuses writes: nothing was stored, retry later.
        if str(error).startswith("OOM"):
            log.error("redis is full (maxmemory reached): refusing writes until jobs expire or memory is raised")
            return problem_response(Unavailable("the job store is full; retry later", retry_after=30))
        return handle_unexpected(error)

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def handle_broker_down(error: Exception):
        log.warning("redis unavailable: %s", error)
        return problem_response(Unavailable("the job store is unreachable; retry shortly"))

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        log.exception("unhandled error")
        return problem_response(InferqError("an unexpected error occurred; it has been logged"))
