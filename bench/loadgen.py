"""A closed-loop asyncio load generator: N clients, each sending its next job when the last ends.

Bounded in time (``--duration``) and aimed at 127.0.0.1 only. The client flows:

- ``inferq``: POST with ``Prefer: wait`` (one request when the job ends in time), then
  long-poll ``GET /v1/jobs/<id>?wait=`` until it is terminal;
- ``inferq-get``: POST (202 at once), then the same long-poll: two requests per job;
- ``inferq-submit``: POST answered 202, no wait; ``healthz``: ``GET /healthz`` (``bench.cost``);
- ``sync``: one POST that answers with the predictions (the naive peer);
- ``poll``: POST, then GET the result every 50 ms until it is ready (the tutorial peer);
- ``predict``: TF Serving's ``POST /v1/models/<m>:predict`` (JSON), answered when the job ends;
- ``v2``: Open Inference Protocol ``POST /v2/models/<m>/infer`` (binary tensors with
  ``--header-length``, JSON without), answered when the job ends.

Prints one JSON object: completed jobs, errors, throughput and latency percentiles.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import aiohttp

POLL_INTERVAL_S = 0.05
"""The tutorial design's client polling period."""

WAIT_S = 30
"""Long-poll wait asked of inferq."""

MULTIPART_BOUNDARY = "inferq-bench-boundary"
"""The boundary of the ``.multipart`` bodies ``bench.run`` writes: one image file per request."""

CONTENT_TYPES = {".npy": "application/x-npy", ".json": "application/json",
                 ".multipart": f"multipart/form-data; boundary={MULTIPART_BOUNDARY}"}

BODY_NAMES = {".npy": ".npy", ".json": "JSON", ".multipart": "JPEG upload"}
"""How the results name each body, by the payload file's suffix."""


async def inferq_job(session, url, model, payload, headers) -> bool:
    """Submit with ``Prefer: wait`` (answered when the job ends in time), then long-poll."""
    return await _submit_and_long_poll(session, url, model, payload, {**headers, "Prefer": f"wait={WAIT_S}"})


async def inferq_get_job(session, url, model, payload, headers) -> bool:
    """Submit (202 at once), then long-poll ``GET /v1/jobs/<id>?wait=``: two requests per job."""
    return await _submit_and_long_poll(session, url, model, payload, headers)


async def _submit_and_long_poll(session, url, model, payload, headers) -> bool:
    async with session.post(f"{url}/v1/models/{model}/jobs", data=payload, headers=headers) as response:
        job = await response.json(content_type=None)
        if response.status not in (200, 202):
            return False
    give_up = time.monotonic() + JOB_DEADLINE_S
    while job["status"] in ("queued", "running") and time.monotonic() < give_up:
        async with session.get(f"{url}/v1/jobs/{job['id']}", params={"wait": str(WAIT_S)}) as response:
            job = await response.json(content_type=None)
    return job["status"] == "succeeded"


async def submit_only_job(session, url, model, payload, headers) -> bool:
    """Submit without waiting: the 202 is the whole exchange, and the job runs on without the client."""
    async with session.post(f"{url}/v1/models/{model}/jobs", data=payload, headers=headers) as response:
        await response.read()
        return response.status == 202


async def healthz_request(session, url, model, payload, headers) -> bool:
    """``GET /healthz``: what any request costs nginx and the web tier, the floor under every flow."""
    async with session.get(f"{url}/healthz") as response:
        await response.read()
        return response.status == 200


async def sync_job(session, url, model, payload, headers) -> bool:
    async with session.post(f"{url}/predict/{model}", data=payload, headers=headers) as response:
        await response.read()
        return response.status == 200


async def predict_job(session, url, model, payload, headers) -> bool:
    async with session.post(f"{url}/v1/models/{model}:predict", data=payload, headers=headers) as response:
        await response.read()
        return response.status == 200


async def v2_job(session, url, model, payload, headers) -> bool:
    async with session.post(f"{url}/v2/models/{model}/infer", data=payload, headers=headers) as response:
        await response.read()
        return response.status == 200


JOB_DEADLINE_S = 60.0
"""A job still unfinished this long after submit counts as an error (and its client moves on)."""


async def poll_job(session, url, model, payload, headers) -> bool:
    async with session.post(f"{url}/predict/{model}", data=payload, headers=headers) as response:
        if response.status != 202:
            return False
        task_id = (await response.json())["task_id"]
    give_up = time.monotonic() + JOB_DEADLINE_S
    while time.monotonic() < give_up:
        await asyncio.sleep(POLL_INTERVAL_S)
        async with session.get(f"{url}/result/{task_id}") as response:
            body = await response.json()
        if body["state"] == "SUCCESS":
            return True
        if body["state"] == "FAILURE":
            return False
    return False


FLOWS = {"inferq": inferq_job, "inferq-get": inferq_get_job, "inferq-submit": submit_only_job,
         "healthz": healthz_request, "sync": sync_job, "poll": poll_job, "predict": predict_job, "v2": v2_job}


async def run(args) -> dict:
    host = urlparse(args.url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit("the load generator only targets 127.0.0.1")
    payload = Path(args.payload).read_bytes()
    headers = {"Content-Type": CONTENT_TYPES[Path(args.payload).suffix]}
    if args.header_length:  # a v2 binary body: tritonclient sends no Content-Type
        headers = {"Inference-Header-Content-Length": str(args.header_length)}
    flow = FLOWS[args.flow]
    latencies: list[float] = []
    finished_at: list[float] = []
    errors = 0
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=0)
    start = time.monotonic()
    measure_from = start + args.warmup
    stop_at = measure_from + args.duration

    async def client():
        nonlocal errors
        while time.monotonic() < stop_at:
            began = time.monotonic()
            try:
                ok = await flow(session, args.url, args.model, payload, headers)
            except (TimeoutError, aiohttp.ClientError, KeyError, ValueError):
                ok = False
            ended = time.monotonic()
            # Every job that ends inside the window counts, whenever it began: slow
            # systems would otherwise look idle when their latency exceeds the warm-up.
            if measure_from <= ended <= stop_at:
                if ok:
                    latencies.append(ended - began)
                    finished_at.append(ended)
                else:
                    errors += 1

    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(client() for _ in range(args.concurrency)))
    return summarize(latencies, finished_at, errors, measure_from, args)


def summarize(latencies, finished_at, errors, measure_from, args) -> dict:
    """Throughput as the median of one-second windows (robust on a noisy machine)."""
    windows = [0] * int(args.duration)
    for moment in finished_at:
        index = int(moment - measure_from)
        if 0 <= index < len(windows):
            windows[index] += 1
    ordered = sorted(latencies)

    def percentile(p):
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else None

    return {
        "flow": args.flow, "body": BODY_NAMES[Path(args.payload).suffix], "model": args.model, "concurrency": args.concurrency,
        "instances_per_job": args.instances, "completed": len(latencies), "errors": errors,
        "jobs_per_s": statistics.median(windows) if windows else 0.0,
        "jobs_per_s_mean": len(latencies) / args.duration,
        "p50_ms": percentile(0.50), "p99_ms": percentile(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--flow", choices=sorted(FLOWS), required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--payload", required=True, help="a .json, .npy or .multipart (one image file) request body")
    parser.add_argument("--instances", type=int, default=1, help="instances in the payload (for reporting)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--header-length", type=int, default=0, help="v2 binary body: its JSON header's length")
    args = parser.parse_args()
    json.dump(asyncio.run(run(args)), sys.stdout)
    print()


if __name__ == "__main__":
    main()
