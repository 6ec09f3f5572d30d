"""The asyncio client: the same surface as ``Client``, with ``await``.

    async with AsyncClient("http://127.0.0.1:8000") as client:
        print(await client.predict("digits", [image]))
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from itertools import islice
from typing import Any

import httpx

from inferq_client import _protocol as protocol
from inferq_client.errors import WaitTimeout
from inferq_client.jobs import Job
from inferq_client.progress import Progress


class AsyncClient:
    """Submit, poll, long-poll, cancel and stream jobs from asyncio code."""

    def __init__(self, base_url: str = protocol.DEFAULT_URL, api_key: str | None = None,
                 timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, transport=transport,
                                       timeout=httpx.Timeout(timeout, read=max(timeout, protocol.LONG_POLL_S + 15)))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise protocol.transport_error(exc) from exc

    async def submit(self, model: str, instances: Any, webhook: dict | None = None, version: int | None = None,
                     idempotency_key: str | None = None, wait: float | None = None,
                     priority: str | None = None, max_queue_s: float | None = None) -> Job:
        """Queue a job, as ``Client.submit`` does (priority and queue deadline included)."""
        request = protocol.submit_request(model, instances, webhook, version, idempotency_key, wait,
                                          priority, max_queue_s)
        return protocol.read_job(await self._send(**request))

    async def get(self, job_id: str) -> Job:
        """The job as it is now."""
        return protocol.read_job(await self._send("GET", f"/v1/jobs/{job_id}"))

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Long-poll until the job ends; ``WaitTimeout`` after ``timeout`` seconds (None: forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = protocol.LONG_POLL_S if deadline is None else deadline - time.monotonic()
            wait = f"{max(0.0, min(remaining, protocol.LONG_POLL_S)):.3f}"
            job = protocol.read_job(await self._send("GET", f"/v1/jobs/{job_id}", params={"wait": wait}))
            if job.done:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} is still {job.status} after {timeout}s")

    async def predict(self, model: str, instances: Any, timeout: float | None = None,
                      version: int | None = None, priority: str | None = None,
                      max_queue_s: float | None = None) -> list:
        """Submit and wait; the predictions, or ``JobFailed`` (an ``expired`` job included)."""
        job = await self.submit(model, instances, version=version, wait=protocol.LONG_POLL_S, priority=priority,
                                max_queue_s=max_queue_s)
        if not job.done:
            job = await self.wait(job.id, timeout)
        return protocol.predictions_of(job)

    async def cancel(self, job_id: str) -> Job:
        """Cancel a queued or running job (``Conflict`` once it has finished)."""
        return protocol.read_job(await self._send("DELETE", f"/v1/jobs/{job_id}"))

    async def models(self) -> list[dict]:
        """The served models with their input and output signatures."""
        return protocol.read_json(await self._send("GET", "/v1/models"))["models"]

    async def reload_models(self) -> int:
        """Ask every worker to rescan the model repository now; how many were notified."""
        return protocol.read_json(await self._send("POST", "/v1/models:reload"))["workers_notified"]

    async def metrics(self) -> str:
        """The Prometheus text of ``/metrics``."""
        response = await self._send("GET", "/metrics")
        if response.status_code >= 300:
            raise protocol.error_for(response)
        return response.text

    async def deliveries(self, job_id: str) -> list[dict]:
        """The job's webhook delivery attempts."""
        return protocol.read_json(await self._send("GET", f"/v1/jobs/{job_id}/deliveries"))["deliveries"]

    async def map(self, model: str, instances: Iterable[Any], batch_size: int = 64, concurrency: int = 4,
                  progress: bool = True, timeout: float | None = None, priority: str | None = None,
                  max_queue_s: float | None = None) -> AsyncIterator[Any]:
        """Predict a stream of instances as chunked jobs; yields predictions in input order."""
        total = len(instances) if hasattr(instances, "__len__") else None
        meter = Progress(total, enabled=progress)
        items = iter(instances)
        window: list[asyncio.Task] = []
        try:
            while True:
                chunk = list(islice(items, batch_size))
                if chunk:
                    window.append(asyncio.ensure_future(self._run_chunk(model, chunk, timeout, priority, max_queue_s)))
                if not window:
                    break
                if len(window) >= concurrency or not chunk:
                    predictions = await window.pop(0)
                    meter.update(len(predictions))
                    for prediction in predictions:
                        yield prediction
        finally:
            for task in window:
                task.cancel()
            meter.close()

    async def _run_chunk(self, model: str, chunk: list, timeout: float | None, priority: str | None,
                         max_queue_s: float | None) -> list:
        job = await self._retrying(lambda: self.submit(model, chunk, wait=protocol.LONG_POLL_S, priority=priority,
                                                       max_queue_s=max_queue_s))
        if not job.done:
            job = await self._retrying(lambda: self.wait(job.id, timeout))
        return protocol.predictions_of(job)

    @staticmethod
    async def _retrying(call):
        attempt = 0
        while True:
            try:
                return await call()
            except Exception as exc:
                delay = protocol.retry_delay(exc, attempt)
                if delay is None or attempt >= protocol.RETRY_ATTEMPTS:
                    raise
                attempt += 1
                await asyncio.sleep(delay)
