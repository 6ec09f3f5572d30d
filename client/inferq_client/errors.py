"""One exception hierarchy, mapped from the server's problem+json answers."""
from __future__ import annotations


class InferqError(Exception):
    """Base class: the server answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, problem: dict | None = None):
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


class NotFound(InferqError):
    """No such job (or it expired), model or route: 404."""


class ValidationError(InferqError):
    """The request does not fit the model or the API (400, 413, 415, 422); see ``.problem``."""


class Conflict(InferqError):
    """The request conflicts with the job's state (409), e.g. canceling a finished job."""


class RateLimited(InferqError):
    """Too many requests (429); retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unavailable(InferqError):
    """The service cannot take the request now (503, or unreachable); retry after ``retry_after``."""

    def __init__(self, message: str, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class WaitTimeout(InferqError):
    """The job did not finish within the time the caller allowed."""


class JobFailed(InferqError):
    """The job ended ``failed`` or ``canceled``; ``.job`` holds it, ``.error`` its error."""

    def __init__(self, job):
        error = job.error or {}
        super().__init__(f"job {job.id} {job.status}: {error.get('type', '')} {error.get('message', '')}".strip())
        self.job = job
        self.error = error
