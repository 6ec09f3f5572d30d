"""Small HTTP helpers shared by the integration tests."""
from __future__ import annotations

import time

import requests

TERMINAL = {"succeeded", "failed", "canceled"}


def submit(session: requests.Session, url: str, model: str, instances, **kwargs) -> requests.Response:
    return session.post(f"{url}/v1/models/{model}/jobs", json={"instances": instances}, timeout=30, **kwargs)


def wait_for(session: requests.Session, url: str, job_id: str, deadline_s: float = 60.0) -> dict:
    """Long-poll until the job is terminal or the deadline passes; returns the last job seen."""
    end = time.monotonic() + deadline_s
    while True:
        remaining = max(0.0, end - time.monotonic())
        job = session.get(f"{url}/v1/jobs/{job_id}", params={"wait": min(remaining, 20)}, timeout=40).json()
        if job["status"] in TERMINAL or time.monotonic() >= end:
            return job


def wait_until(check, timeout_s: float, what: str, step_s: float = 0.1):
    """``check()``'s first truthy value; AssertionError naming ``what`` after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def assert_problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    return problem
