"""Publishing a job: Celery's ``send_task`` against inferq's one-script submit, side by side.

Runs against the Redis URL given; uses its own queue names and deletes what it wrote.
Prints one JSON object of median microseconds per submitted job.
"""
from __future__ import annotations

import json
import statistics
import sys
import time

import redis

from shared import keys
from shared.job_store import JobStore
from shared.jobs import Job, new_job_id
from shared.queue import JobQueue
from shared.settings import Settings
from workers.celery_config import make_celery

ROUNDS, PER_ROUND = 5, 400
MODEL = "publish-probe"


def per_job_us(action) -> float:
    timings = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(PER_ROUND):
            action()
        timings.append((time.perf_counter() - started) / PER_ROUND * 1e6)
    return statistics.median(timings)


def main(url: str) -> None:
    client = redis.Redis.from_url(url)
    store = JobStore(client, ttl_s=300)
    queue = JobQueue(client, store, Settings().max_queued_per_model)  # the default cap, as served
    celery = make_celery(Settings(redis_url=url))

    def job():
        return Job(id=new_job_id(), model=MODEL, model_version="1", instances_json=b"[[1]]")

    def with_send_task():
        created = job()  # the two-step design: write the record, then publish with Celery
        client.hset(keys.job(created.id), mapping=store.new_record(created))
        celery.send_task("inferq.predict", args=[created.id], queue=f"inferq.{MODEL}")

    result = {
        "send_task_only_us": per_job_us(lambda: celery.send_task("inferq.predict", args=["x"],
                                                                  queue=f"inferq.{MODEL}")),
        "record_then_send_task_us": per_job_us(with_send_task),
        "one_script_submit_us": per_job_us(lambda: queue.submit(job())),
    }
    for key in client.scan_iter(f"*{MODEL}*"):
        client.delete(key)
    for key in client.scan_iter("inferq:job:*"):
        client.delete(key)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
