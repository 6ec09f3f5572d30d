"""The batching consumer's claim, acknowledge and recovery logic, on fakeredis."""
import time

import numpy as np
import orjson

from shared import celery_message, keys
from shared.broker import PREDICT_TASK
from shared.jobs import Job, JobStatus, JobStore
from shared.queue import JobQueue
from workers.batching import BatchPolicy
from workers.consumer import BatchConsumer


class DoublingModel:
    """Stands in for a compiled model: doubles its input."""

    def __init__(self):
        self.passes = []

    def to_batch(self, job):
        return np.asarray(orjson.loads(job.instances_json), dtype=np.float32)

    def predict(self, batch):
        self.passes.append(len(batch))
        return [batch * 2]

    def encode(self, arrays):
        return repr(arrays[0].tolist()).encode()

    def top_labels(self, arrays):
        return None


class OneModelRegistry:
    def __init__(self, model, policy):
        self.model = model
        self.policy = policy

    def get(self, name, version):
        return self.model

    def get_or_wait(self, name, version, stopping=None):
        return self.get(name, version)

    def batch_policy(self, name):
        return self.policy


def make_consumer(redis_client, policy=BatchPolicy(), model=None, name="digits"):
    store = JobStore(redis_client, ttl_s=60)
    consumer = BatchConsumer(redis_client, store, OneModelRegistry(model or DoublingModel(), policy), name,
                             "w1", policy)
    return consumer, store, JobQueue(redis_client, store)


def submit(queue, job_id, instances, model="digits"):
    queue.submit(Job(id=job_id, model=model, model_version="1", instances_json=repr(instances).encode()))


def test_a_batch_claims_every_queued_job_up_to_the_limit_oldest_first(redis_client):
    consumer, _, queue = make_consumer(redis_client, BatchPolicy(max_batch_size=3))
    for n in range(5):
        submit(queue, f"j{n}", [[n]])
    claimed = [celery_message.job_id_of(m, PREDICT_TASK) for m in consumer.gather()]
    assert claimed == ["j0", "j1", "j2"]
    assert redis_client.llen(keys.queue("digits")) == 2
    assert redis_client.llen(keys.processing("w1", "digits")) == 3


def test_processing_stores_results_and_acknowledges_each_message(redis_client):
    model = DoublingModel()
    consumer, store, queue = make_consumer(redis_client, model=model)
    submit(queue, "a", [[1.0]])
    submit(queue, "b", [[2.0], [3.0]])
    consumer.process(consumer.gather(), time.time())
    assert model.passes == [3]
    assert store.get("a").predictions_json == b"[[2.0]]"
    assert store.get("b").predictions_json == b"[[4.0], [6.0]]"
    timings = store.get("b").timings
    assert timings["batch_size"] == 3 and timings["inference_ms"] >= 0
    assert redis_client.llen(keys.processing("w1", "digits")) == 0


def test_a_restarted_worker_requeues_what_it_held(redis_client):
    consumer, store, queue = make_consumer(redis_client)
    submit(queue, "held", [[1.0]])
    consumer.gather()  # claimed, then the worker "dies" before processing
    assert redis_client.llen(keys.queue("digits")) == 0
    reborn, _, _ = make_consumer(redis_client)
    assert reborn.recover() == 1
    reborn.process(reborn.gather(), time.time())
    assert store.get("held").status is JobStatus.SUCCEEDED


def test_redelivered_finished_jobs_are_acknowledged_without_running(redis_client):
    model = DoublingModel()
    consumer, store, queue = make_consumer(redis_client, model=model)
    submit(queue, "done", [[1.0]])
    consumer.process(consumer.gather(), time.time())
    queue.requeue("done", "digits")
    consumer.process(consumer.gather(), time.time())
    assert model.passes == [1]
    assert redis_client.llen(keys.processing("w1", "digits")) == 0


def test_malformed_and_pickled_messages_are_discarded_not_run(redis_client):
    consumer, _, _ = make_consumer(redis_client)
    redis_client.lpush(keys.queue("digits"), b'{"content-type": "application/x-python-serialize", "body": "gASV"}')
    consumer.process(consumer.gather(), time.time())
    assert redis_client.llen(keys.processing("w1", "digits")) == 0
    assert redis_client.llen(keys.queue("digits")) == 0


def test_a_redis_outage_pauses_the_consumer_and_requeues_its_claims(redis_client, monkeypatch):
    import threading

    consumer, store, queue = make_consumer(redis_client)
    submit(queue, "survivor", [[1.0]])
    calls = {"n": 0}
    real_process = consumer.process

    def flaky_process(messages, claimed_at):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("redis went away mid-batch")
        real_process(messages, claimed_at)
        consumer.stop()

    monkeypatch.setattr(consumer, "process", flaky_process)
    monkeypatch.setattr("workers.consumer.RETRY_PAUSE_S", 0.01)
    thread = threading.Thread(target=consumer.run_forever)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert store.get("survivor").status.value == "succeeded"
    assert redis_client.llen(keys.processing("w1", "digits")) == 0
