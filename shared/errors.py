"""One error hierarchy; each class maps to one HTTP status and one problem type (RFC 9457)."""
from __future__ import annotations

PROBLEM_BASE = "https://inferq.dev/problems/"


class InferqError(Exception):
    """Base class: an error the API answers as ``application/problem+json``."""

    status = 500
    slug = "internal-error"
    title = "Internal server error"

    def __init__(self, detail: str = "", **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    def to_problem(self) -> dict:
        """The problem document for this error."""
        problem = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        problem.update(self.extra)
        return problem


class BadRequest(InferqError):
    """The body is not valid JSON (NaN and Infinity included) or is structurally wrong."""

    status, slug, title = 400, "bad-request", "Malformed request"


class Unauthorized(InferqError):
    """API keys are configured and the request carries none, or a wrong one."""

    status, slug, title = 401, "unauthorized", "Unauthorized"


class Forbidden(InferqError):
    """The key is valid but this is an operator route, and it is not an operator key."""

    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(InferqError):
    """No such job (or it expired), model or route."""

    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(InferqError):
    """The route exists but not for this HTTP method."""

    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(InferqError):
    """The request is valid but conflicts with the resource's current state."""

    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(InferqError):
    """The body exceeds ``INFERQ_MAX_BODY_BYTES``."""

    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(InferqError):
    """The request's Content-Type is not one the route accepts."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class InvalidInput(InferqError):
    """The body parses but does not fit the model's signature or the service's limits."""

    status, slug, title = 422, "invalid-input", "Input does not fit the model"


class TooManyRequests(InferqError):
    """The API key is over its submission rate; retry after ``retry_after`` seconds."""

    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str = "", retry_after: int = 1, **extra):
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class Unavailable(InferqError):
    """A dependency (Redis) is down, or a model's queue is full; retry after ``retry_after`` s."""

    status, slug, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str = "", retry_after: int = 5, **extra):
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class GatewayTimeout(InferqError):
    """A synchronous call (TF Serving's ``:predict``) outlived its wait; the job goes on."""

    status, slug, title = 504, "timeout", "The job did not finish in time"


class ModelFailed(InferqError):
    """A synchronous call's job ended ``failed``: the model (or its worker) refused the input."""

    status, slug, title = 422, "model-failed", "The model failed on this input"
