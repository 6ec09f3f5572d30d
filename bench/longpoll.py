"""Long-poll capacity: a thousand clients waiting at once must not exhaust the web workers.

With the model's worker stopped, N jobs are queued and N clients long-poll them at the
same time; then the worker starts. Reports how many answers came back ``succeeded`` and
how long after the worker's start the last one did. Bounded: 127.0.0.1 only, one round.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

import aiohttp

DIGIT = [[0, 0, 5, 13, 9, 1, 0, 0]] * 8


async def run(url: str, count: int, start_worker) -> dict:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async def submit():
            async with session.post(f"{url}/v1/models/digits/jobs", json={"instances": [DIGIT]}) as response:
                return (await response.json())["id"]

        ids = await asyncio.gather(*(submit() for _ in range(count)))

        async def poll(job_id):
            async with session.get(f"{url}/v1/jobs/{job_id}", params={"wait": "60"}) as response:
                return response.status, (await response.json()).get("status")

        waiting = [asyncio.ensure_future(poll(job_id)) for job_id in ids]
        await asyncio.sleep(3.0)  # every client is now parked in a long-poll
        parked = sum(not task.done() for task in waiting)
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, start_worker)
        answers = await asyncio.gather(*waiting, return_exceptions=True)
        elapsed = time.monotonic() - started
    outcomes = Counter(type(a).__name__ if isinstance(a, Exception) else f"{a[0]} {a[1]}" for a in answers)
    return {"clients": count, "parked_while_waiting": parked, "succeeded": outcomes.get("200 succeeded", 0),
            "seconds_after_worker_start": round(elapsed, 2), "outcomes": dict(outcomes)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], int(sys.argv[2]), lambda: None))))
