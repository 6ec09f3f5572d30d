"""The synchronous client.

    from inferq_client import Client
    with Client("http://127.0.0.1:8000") as client:
        print(client.predict("digits", [image]))
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import httpx

from inferq_client import _protocol as protocol
from inferq_client.errors import WaitTimeout
from inferq_client.jobs import Job
from inferq_client.progress import Progress


class Client:
    """Submit, poll, long-poll, cancel and stream jobs; every call has a timeout."""

    def __init__(self, base_url: str = protocol.DEFAULT_URL, api_key: str | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Long-polls hold a request for up to LONG_POLL_S: the read timeout must outlast it.
        self._http = httpx.Client(base_url=base_url, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(timeout, read=max(timeout, protocol.LONG_POLL_S + 15)))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise protocol.transport_error(exc) from exc

    def submit(self, model: str, instances: Any, webhook: dict | None = None, version: int | None = None,
               idempotency_key: str | None = None, wait: float | None = None,
               priority: str | None = None, max_queue_s: float | None = None) -> Job:
        """Queue a job; returns it at once (or finished, when ``wait`` seconds suffice).

        ``priority`` is ``high``, ``normal`` (the default) or ``low``; with ``max_queue_s`` the job
        starts within that many seconds or ends ``expired``, and a submit whose estimated wait is
        already longer raises ``Unavailable`` (503) at once.
        """
        request = protocol.submit_request(model, instances, webhook, version, idempotency_key, wait,
                                          priority, max_queue_s)
        return protocol.read_job(self._send(**request))

    def get(self, job_id: str) -> Job:
        """The job as it is now."""
        return protocol.read_job(self._send("GET", f"/v1/jobs/{job_id}"))

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Long-poll until the job ends; ``WaitTimeout`` after ``timeout`` seconds (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = protocol.LONG_POLL_S if deadline is None else deadline - time.monotonic()
            job = protocol.read_job(self._send("GET", f"/v1/jobs/{job_id}",
                                               params={"wait": f"{max(0.0, min(remaining, protocol.LONG_POLL_S)):.3f}"}))
            if job.done:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} is still {job.status} after {timeout}s")

    def predict(self, model: str, instances: Any, timeout: float | None = None, version: int | None = None,
                priority: str | None = None, max_queue_s: float | None = None) -> list:
        """Submit and wait; the predictions, or ``JobFailed`` (an ``expired`` job included)."""
        job = self.submit(model, instances, version=version, wait=protocol.LONG_POLL_S, priority=priority,
                          max_queue_s=max_queue_s)
        if not job.done:
            job = self.wait(job.id, timeout)
        return protocol.predictions_of(job)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (``Conflict`` once it has finished)."""
        return protocol.read_job(self._send("DELETE", f"/v1/jobs/{job_id}"))

    def models(self) -> list[dict]:
        """The served models with their input and output signatures."""
        return protocol.read_json(self._send("GET", "/v1/models"))["models"]

    def reload_models(self) -> int:
        """Ask every worker to rescan the model repository now; how many were notified."""
        return protocol.read_json(self._send("POST", "/v1/models:reload"))["workers_notified"]

    def metrics(self) -> str:
        """The Prometheus text of ``/metrics``."""
        response = self._send("GET", "/metrics")
        if response.status_code >= 300:
            raise protocol.error_for(response)
        return response.text

    def deliveries(self, job_id: str) -> list[dict]:
        """The job's webhook delivery attempts."""
        return protocol.read_json(self._send("GET", f"/v1/jobs/{job_id}/deliveries"))["deliveries"]

    def map(self, model: str, instances: Iterable[Any], batch_size: int = 64, concurrency: int = 4,
            progress: bool = True, timeout: float | None = None, priority: str | None = None,
            max_queue_s: float | None = None) -> Iterator[Any]:
        """Predict a stream of instances as chunked jobs; yields predictions in input order.

        At most ``concurrency`` jobs are in flight; 429, 503 and connection errors are retried
        (honouring ``Retry-After``); a failed chunk raises ``JobFailed``.
        """
        total = len(instances) if hasattr(instances, "__len__") else None
        meter = Progress(total, enabled=progress)
        chunks = _chunks(iter(instances), batch_size)
        try:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                window: deque = deque()
                for chunk in chunks:
                    window.append(pool.submit(self._run_chunk, model, chunk, timeout, priority, max_queue_s))
                    if len(window) >= concurrency:
                        yield from self._drain_one(window, meter)
                while window:
                    yield from self._drain_one(window, meter)
        finally:
            meter.close()

    @staticmethod
    def _drain_one(window: deque, meter: Progress) -> Iterator[Any]:
        predictions = window.popleft().result()
        meter.update(len(predictions))
        yield from predictions

    def _run_chunk(self, model: str, chunk: list, timeout: float | None, priority: str | None,
                   max_queue_s: float | None) -> list:
        job = self._retrying(lambda: self.submit(model, chunk, wait=protocol.LONG_POLL_S, priority=priority,
                                                 max_queue_s=max_queue_s))
        if not job.done:
            job = self._retrying(lambda: self.wait(job.id, timeout))
        return protocol.predictions_of(job)

    @staticmethod
    def _retrying(call):
        """``call()``, retried on 429, 503 and connection errors with backoff and Retry-After."""
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:
                delay = protocol.retry_delay(exc, attempt)
                if delay is None or attempt >= protocol.RETRY_ATTEMPTS:
                    raise
                attempt += 1
                time.sleep(delay)


def _chunks(items: Iterator[Any], size: int) -> Iterator[list]:
    while True:
        chunk = list(islice(items, size))
        if not chunk:
            return
        yield chunk
