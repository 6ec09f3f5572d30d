"""The batching consumer's claim, acknowledge and recovery logic, on fakeredis."""
import time

import numpy as np
import orjson

from shared import celery_message, keys
from shared.job_store import JobStore
from shared.jobs import Job, JobStatus
from shared.queue import JobQueue
from shared.tasks import PREDICT_TASK
from tests.fixtures.lanes import waiting_count
from workers.inference.batching import BatchPolicy
from workers.inference.consumer import BatchConsumer


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

    def time_limit(self, name):
        return 0.0


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
    assert waiting_count(redis_client, "digits") == 2
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


def test_a_restarted_worker_runs_each_job_it_held_alone(redis_client):
    """The death may have been one job's doing: none of them goes back into a batch."""
    consumer, store, queue = make_consumer(redis_client)
    for name in ("h1", "h2", "h3"):
        submit(queue, name, [[1.0]])
    consumer.gather()  # claimed, then the worker "dies" before processing
    assert waiting_count(redis_client, "digits") == 0
    model = DoublingModel()
    reborn, _, _ = make_consumer(redis_client, model=model)
    assert reborn.recover() == 3
    assert model.passes == [1, 1, 1]
    assert {store.get(n).status for n in ("h1", "h2", "h3")} == {JobStatus.SUCCEEDED}
    assert redis_client.llen(keys.processing("w1", "digits")) == 0


def test_a_job_whose_worker_died_max_attempts_times_fails_as_worker_lost(redis_client):
    consumer, store, queue = make_consumer(redis_client)
    submit(queue, "poison", [[1.0]])
    submit(queue, "innocent", [[2.0]])
    consumer.gather()
    for _ in range(3):  # started three times, and each time the worker died
        store.start("poison", "w1")
    model = DoublingModel()
    reborn, _, _ = make_consumer(redis_client, model=model)
    reborn.recover()
    poison = store.get("poison")
    assert poison.status is JobStatus.FAILED and poison.error["type"] == "WorkerLost"
    assert "worker lost 3 times" in poison.error["message"]
    assert store.get("innocent").status is JobStatus.SUCCEEDED and model.passes == [1]


def test_jobs_held_by_a_silent_worker_are_requeued_and_live_workers_are_left_alone(redis_client):
    consumer, store, queue = make_consumer(redis_client)
    now = time.time()
    redis_client.zadd(keys.workers("digits"), {"dead": now - 120, "alive": now})
    for owner in ("dead", "alive"):
        redis_client.lpush(keys.processing(owner, "digits"), f"message-of-{owner}")
    assert consumer.reconcile() == 1
    assert redis_client.lrange(keys.queue("digits"), 0, -1) == [b"message-of-dead"]
    assert redis_client.llen(keys.processing("alive", "digits")) == 1
    assert redis_client.zscore(keys.workers("digits"), "dead") is None
    assert consumer.reconcile() == 0  # not again before the interval


def test_a_requeued_job_started_too_often_fails_instead_of_running(redis_client):
    model = DoublingModel()
    consumer, store, queue = make_consumer(redis_client, model=model)
    submit(queue, "again", [[1.0]])
    for _ in range(3):
        store.start("again", "elsewhere")
    consumer.process(consumer.gather(), time.time())
    assert store.get("again").error["type"] == "WorkerLost" and model.passes == []


def test_redelivered_finished_jobs_are_acknowledged_without_running(redis_client):
    model = DoublingModel()
    consumer, store, queue = make_consumer(redis_client, model=model)
    submit(queue, "done", [[1.0]])
    consumer.process(consumer.gather(), time.time())
    redis_client.lpush(keys.queue("digits"), celery_message.encode(PREDICT_TASK, "done", keys.queue("digits")))
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
    monkeypatch.setattr("workers.inference.consumer.RETRY_PAUSE_S", 0.01)
    thread = threading.Thread(target=consumer.run_forever)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert store.get("survivor").status.value == "succeeded"
    assert redis_client.llen(keys.processing("w1", "digits")) == 0
