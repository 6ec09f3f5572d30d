"""Batching policy timing against a real Redis (fakeredis does not block on BLMOVE)."""
import threading
import time
import uuid

import pytest
import redis

from shared import celery_message
from shared.tasks import PREDICT_TASK
from tests.unit.test_consumer import make_consumer, submit
from workers.inference.batching import BatchPolicy

MODEL = "policy-probe"
"""A model name no running worker serves, so only the test consumes its queue."""


@pytest.fixture
def real_redis(stack):
    client = redis.Redis.from_url(stack.redis_url())
    yield client
    for key in client.scan_iter(f"inferq*{MODEL}*"):
        client.delete(key)


def ids(messages):
    return [celery_message.job_id_of(m, PREDICT_TASK) for m in messages]


def test_non_adaptive_batches_wait_up_to_max_delay_for_company(real_redis):
    consumer, _, queue = make_consumer(real_redis, BatchPolicy(max_batch_size=8, max_delay_s=0.5,
                                                               adaptive=False), name=MODEL)
    first, second = f"policy-{uuid.uuid4()}", f"policy-{uuid.uuid4()}"
    submit(queue, first, [[1.0]], MODEL)
    threading.Timer(0.1, submit, args=(queue, second, [[2.0]], MODEL)).start()
    started = time.monotonic()
    claimed = consumer.gather()
    elapsed = time.monotonic() - started
    assert ids(claimed) == [first, second]
    # It kept waiting after the second job, until max_delay ran out, and not much longer.
    assert 0.45 <= elapsed < 3.0
    consumer.process(claimed, time.time())


def test_adaptive_batches_do_not_wait_when_the_queue_is_empty(real_redis):
    consumer, _, queue = make_consumer(real_redis, BatchPolicy(max_batch_size=8, max_delay_s=5.0,
                                                               adaptive=True), name=MODEL)
    only = f"policy-{uuid.uuid4()}"
    submit(queue, only, [[1.0]], MODEL)
    started = time.monotonic()
    claimed = consumer.gather()
    assert ids(claimed) == [only]
    assert time.monotonic() - started < 2.0
    consumer.process(claimed, time.time())
