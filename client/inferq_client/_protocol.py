"""What the sync and async clients share: building requests and reading answers."""
from __future__ import annotations

import io
import json
import random
from typing import Any

import httpx

from inferq_client.errors import Conflict, InferqError, JobFailed, NotFound, RateLimited, Unavailable, ValidationError
from inferq_client.jobs import Job

DEFAULT_URL = "http://127.0.0.1:8000"
LONG_POLL_S = 30.0
"""The longest single long-poll asked of the server (it caps it anyway)."""

RETRY_ATTEMPTS = 8
"""How often ``map`` retries a chunk on 429, 503 or a connection error."""


def submit_request(model: str, instances: Any, webhook: dict | None, version: int | None,
                   idempotency_key: str | None, wait_s: float | None, priority: str | None = None,
                   max_queue_s: float | None = None) -> dict:
    """Keyword arguments for ``httpx`` to submit a job (JSON, or .npy for numpy arrays).

    ``priority`` (``high``, ``normal``, ``low``) picks the job's lane; ``max_queue_s`` asks the
    service to start it within that many seconds or end it ``expired`` (and to refuse it with
    503 at once when the estimated wait is already longer).
    """
    path = f"/v1/models/{model}/jobs" if version is None else f"/v1/models/{model}/versions/{version}/jobs"
    headers = {}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if wait_s:
        headers["Prefer"] = f"wait={wait_s:g}"
    array = _as_numpy(instances)
    if array is not None:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        headers["Content-Type"] = "application/x-npy"
        if webhook:
            headers["Inferq-Webhook-Url"] = webhook["url"]
            headers["Inferq-Webhook-Events"] = ",".join(webhook.get("events", ["completed"]))
        headers.update(scheduling_headers(priority, max_queue_s))
        return {"method": "POST", "url": path, "content": buffer.getvalue(), "headers": headers}
    body: dict[str, Any] = {"instances": instances}
    if webhook:
        body["webhook"] = webhook
    if priority is not None:
        body["priority"] = priority
    if max_queue_s is not None:
        body["max_queue_s"] = max_queue_s
    headers["Content-Type"] = "application/json"
    return {"method": "POST", "url": path, "content": json.dumps(body, allow_nan=False), "headers": headers}


def scheduling_headers(priority: str | None, max_queue_s: float | None) -> dict[str, str]:
    """The headers that carry ``priority`` and ``max_queue_s`` where the body cannot."""
    headers = {}
    if priority is not None:
        headers["Inferq-Priority"] = priority
    if max_queue_s is not None:
        headers["Inferq-Max-Queue-S"] = f"{max_queue_s:g}"
    return headers


def _as_numpy(instances):
    """An array to send as .npy: a numpy array, or a list of equally shaped ones."""
    try:
        import numpy as np
    except ImportError:
        return None
    if isinstance(instances, np.ndarray):
        return instances
    if isinstance(instances, list) and instances and all(isinstance(i, np.ndarray) for i in instances):
        return np.stack(instances)
    return None


def read_job(response: httpx.Response) -> Job:
    """The job in a successful answer; typed errors otherwise."""
    return Job.from_json(read_json(response))


def read_json(response: httpx.Response) -> Any:
    """The JSON of a 2xx answer, or the typed error its problem+json describes."""
    if response.status_code < 300:
        return response.json()
    raise error_for(response)


def error_for(response: httpx.Response) -> InferqError:
    """Map a problem+json answer to one exception class."""
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text[:200]}
    status = response.status_code
    message = f"{status} {problem.get('title', '')}: {problem.get('detail', '')}".strip()
    retry_after = _retry_after(response)
    if status == 404:
        return NotFound(message, status=status, problem=problem)
    if status in (400, 413, 415, 422):
        return ValidationError(message, status=status, problem=problem)
    if status == 409:
        return Conflict(message, status=status, problem=problem)
    if status == 429:
        return RateLimited(message, retry_after=retry_after, status=status, problem=problem)
    if status in (502, 503, 504):
        return Unavailable(message, retry_after=retry_after, status=status, problem=problem)
    return InferqError(message, status=status, problem=problem)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def retry_delay(error: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``error``, or None when it is not retryable."""
    if isinstance(error, (RateLimited, Unavailable)):
        hinted = error.retry_after
    elif isinstance(error, httpx.TransportError):
        hinted = None
    else:
        return None
    backoff = min(30.0, 0.5 * 2 ** attempt) * random.uniform(0.8, 1.2)
    return max(backoff, hinted or 0.0)


def predictions_of(job: Job) -> list:
    """A finished job's predictions, or ``JobFailed``."""
    if job.status != "succeeded":
        raise JobFailed(job)
    return job.predictions or []


def transport_error(exc: httpx.TransportError) -> Unavailable:
    """A connection problem as the same type a 503 raises."""
    return Unavailable(f"cannot reach the service: {exc}")
