"""The deliverer's bookkeeping on fakeredis, with the HTTP attempt replaced by a stub seam."""
import base64
import time

import orjson
import pytest

from shared import keys, tasks
from shared.job_store import JobStore
from shared.jobs import Job
from shared.outbox import Delivery, Outbox
from shared.settings import Settings
from shared.webhooks import WebhookEvent
from tests.unit.conftest import submit_job
from workers.webhooks import delivery as webhook_delivery
from workers.webhooks import signing
from workers.webhooks.http import AttemptResult
from workers.webhooks.scheduler import RetryScheduler


@pytest.fixture
def settings():
    return Settings(webhook_secret=signing.new_secret(), webhook_schedule_s="0.01,0.01")


@pytest.fixture
def answers(monkeypatch):
    """The attempts' results, consumed in order; each call is remembered."""
    script = {"results": [], "calls": []}

    def fake_post(url, body, headers, *args, **kwargs):
        script["calls"].append((url, orjson.loads(body), headers))
        return script["results"].pop(0)

    monkeypatch.setattr(webhook_delivery, "post", fake_post)
    return script


def finished_job(redis_client, events=("completed",)):
    store = JobStore(redis_client, ttl_s=60)
    job = Job(id="j1", model="digits", model_version="1",
              webhook={"url": "https://example.com/hook", "events": list(events)})
    submit_job(store, job)
    store.start("j1", "w")
    store.succeed(job, b"[[1]]")
    return job


def started_job(redis_client, events=("started", "completed")):
    """A job that has started (not ended) and asked for ``events``."""
    store = JobStore(redis_client, ttl_s=60)
    job = Job(id="j1", model="digits", model_version="1",
              webhook={"url": "https://example.com/hook", "events": list(events)})
    submit_job(store, job)
    store.start("j1", "w")
    return store, job


def queued_deliveries(redis_client):
    return [orjson.loads(base64.b64decode(orjson.loads(m)["body"]))[0]
            for m in redis_client.lrange(tasks.WEBHOOK_QUEUE, 0, -1)]


def test_finishing_a_job_queues_its_completed_delivery_in_the_same_step(redis_client):
    finished_job(redis_client)
    assert queued_deliveries(redis_client) == [["j1", "completed", "msg_j1_completed", 1]]


def test_starting_a_job_queues_started_only_when_asked(redis_client):
    finished_job(redis_client, events=("started", "completed"))
    assert [d[1] for d in queued_deliveries(redis_client)] == ["completed", "started"]


def test_a_delivered_event_is_logged_with_the_job_in_the_body(redis_client, settings, answers):
    finished_job(redis_client)
    answers["results"] = [AttemptResult(status=204, duration_s=0.01)]
    deliverer = webhook_delivery.Deliverer(settings, redis_client)
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "delivered"
    url, body, headers = answers["calls"][0]
    assert body["type"] == "job.completed" and body["data"]["predictions"] == [[1]]
    assert headers["webhook-id"] == "msg_j1_completed"
    log = [orjson.loads(e) for e in redis_client.lrange(keys.deliveries("j1"), 0, -1)]
    assert log[0]["outcome"] == "delivered" and log[0]["status_code"] == 204 and log[0]["attempt"] == 1


def test_retries_wait_in_redis_then_the_scheduler_queues_them_with_the_same_id(redis_client, settings, answers):
    import time

    finished_job(redis_client)
    redis_client.delete(tasks.WEBHOOK_QUEUE)
    answers["results"] = [AttemptResult(status=503), AttemptResult(error="refused"), AttemptResult(status=500)]
    deliverer = webhook_delivery.Deliverer(settings, redis_client)
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "retrying"
    assert redis_client.zcard(keys.WEBHOOK_SCHEDULE) == 1
    time.sleep(0.05)
    assert RetryScheduler(redis_client).move_due() == 1
    assert queued_deliveries(redis_client) == [["j1", "completed", "msg_j1_completed", 2]]
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 2) == "retrying"
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 3) == "dead"
    assert redis_client.llen(keys.DEAD_WEBHOOKS) == 1
    assert redis_client.hget(keys.METRICS_WEBHOOKS, "dead") == b"1"


def test_completed_waits_while_started_is_still_pending(redis_client, settings, answers):
    finished_job(redis_client, events=("started", "completed"))
    deliverer = webhook_delivery.Deliverer(settings, redis_client)
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "waiting"
    assert answers["calls"] == []
    answers["results"] = [AttemptResult(status=200), AttemptResult(status=200)]
    assert deliverer.deliver("j1", "started", "msg_j1_started", 1) == "delivered"
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "delivered"


def test_a_denied_destination_is_final_and_logged_with_its_reason(redis_client, settings, answers):
    finished_job(redis_client)
    answers["results"] = [AttemptResult(error="example.com resolves to a denied address: 10.0.0.1 is private",
                                        denied=True)]
    deliverer = webhook_delivery.Deliverer(settings, redis_client)
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "denied"
    entry = orjson.loads(redis_client.lindex(keys.deliveries("j1"), 0))
    assert "denied address" in entry["error"] and redis_client.zcard(keys.WEBHOOK_SCHEDULE) == 0


def test_delivery_messages_decode_as_celery_calls():
    raw = Delivery("j", WebhookEvent.STARTED, 2).message()
    envelope = orjson.loads(raw)
    assert envelope["headers"]["task"] == tasks.DELIVER_TASK
    assert envelope["properties"]["delivery_info"]["routing_key"] == tasks.WEBHOOK_QUEUE
    assert envelope["content-type"] == "application/json"


def test_a_queued_delivery_stays_outstanding_until_its_final_outcome(redis_client, settings, answers):
    finished_job(redis_client)
    assert redis_client.zscore(keys.WEBHOOK_OUTSTANDING, "j1|completed") is not None
    answers["results"] = [AttemptResult(status=503, duration_s=0.01), AttemptResult(status=200, duration_s=0.01)]
    deliverer = webhook_delivery.Deliverer(settings, redis_client)
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 1) == "retrying"
    [(_, due)] = redis_client.zrange(keys.WEBHOOK_SCHEDULE, 0, -1, withscores=True)
    assert redis_client.zscore(keys.WEBHOOK_OUTSTANDING, "j1|completed") == due
    assert deliverer.deliver("j1", "completed", "msg_j1_completed", 2) == "delivered"
    assert redis_client.zscore(keys.WEBHOOK_OUTSTANDING, "j1|completed") is None


def test_a_delivery_whose_message_was_lost_is_queued_again_with_the_same_id(redis_client):
    finished_job(redis_client)
    redis_client.delete(tasks.WEBHOOK_QUEUE)  # the broker connection died between pop and ack
    scheduler = RetryScheduler(redis_client, lost_after_s=60)
    now = redis_client.zscore(keys.WEBHOOK_OUTSTANDING, "j1|completed")
    assert scheduler.requeue_lost(now + 30) == 0  # not yet: it may still be on its way
    assert scheduler.requeue_lost(now + 61) == 1
    assert queued_deliveries(redis_client) == [["j1", "completed", "msg_j1_completed", 1]]
    assert redis_client.zscore(keys.WEBHOOK_OUTSTANDING, "j1|completed") == now + 61


def test_the_started_event_carries_the_job_as_it_was_when_it_started(redis_client, settings, answers):
    store, job = started_job(redis_client)
    store.succeed(job, b"[[1]]")  # a fast job ends before its started event is sent
    answers["results"] = [AttemptResult(status=200)]
    deliverer = webhook_delivery.Deliverer(settings, redis_client)
    assert deliverer.deliver("j1", "started", "msg_j1_started", 1) == "delivered"
    _, body, _ = answers["calls"][0]
    assert body["type"] == "job.started" and body["data"]["status"] == "running"
    assert "predictions" not in body["data"] and body["timestamp"] == body["data"]["started_at"]


def test_every_attempt_of_one_webhook_id_sends_the_same_bytes(redis_client, settings, monkeypatch):
    bodies = []
    statuses = [503, 200, 503, 503]  # started: retried, then delivered; completed: retried twice

    def fake_post(url, body, headers, *args, **kwargs):
        bodies.append((headers["webhook-id"], body))
        return AttemptResult(status=statuses.pop(0))

    monkeypatch.setattr(webhook_delivery, "post", fake_post)
    store, job = started_job(redis_client)
    deliverer = webhook_delivery.Deliverer(settings, redis_client)
    deliverer.deliver("j1", "started", "msg_j1_started", 1)
    store.succeed(job, b"[[1]]")
    time.sleep(0.01)  # a retry later, and the job moved on meanwhile
    deliverer.deliver("j1", "started", "msg_j1_started", 2)
    deliverer.deliver("j1", "completed", "msg_j1_completed", 1)
    time.sleep(0.01)
    deliverer.deliver("j1", "completed", "msg_j1_completed", 2)
    started = [body for msg_id, body in bodies if msg_id == "msg_j1_started"]
    completed = [body for msg_id, body in bodies if msg_id == "msg_j1_completed"]
    assert len(started) == 2 and started[0] == started[1]
    assert len(completed) == 2 and completed[0] == completed[1]


def test_a_restarted_job_keeps_the_started_event_of_its_first_start(redis_client):
    store, _ = started_job(redis_client)
    first = redis_client.hgetall(keys.webhook_event("j1", "started"))
    store.start("j1", "w2")  # redelivered after its worker died
    assert redis_client.hgetall(keys.webhook_event("j1", "started")) == first
    assert [d[1] for d in queued_deliveries(redis_client)] == ["started"]


def test_a_redelivery_keeps_the_same_books_as_the_first_delivery(redis_client):
    finished_job(redis_client)
    redis_client.delete(tasks.WEBHOOK_QUEUE, keys.WEBHOOK_OUTSTANDING)
    Outbox(redis_client, 60).queue(Delivery("j1", WebhookEvent.COMPLETED))
    assert queued_deliveries(redis_client) == [["j1", "completed", "msg_j1_completed", 1]]
    assert redis_client.zscore(keys.WEBHOOK_OUTSTANDING, "j1|completed") is not None
    assert redis_client.exists(keys.webhook_open("j1", "completed"))


def test_an_unreadable_schedule_entry_is_dropped_and_the_others_still_move(redis_client, settings, answers):
    finished_job(redis_client)
    redis_client.delete(tasks.WEBHOOK_QUEUE)
    Outbox(redis_client, 60).schedule(Delivery("j1", WebhookEvent.COMPLETED, 2), time.time() - 1)
    redis_client.zadd(keys.WEBHOOK_SCHEDULE, {b'{"body": "an old full message"}': time.time() - 1})
    assert RetryScheduler(redis_client).move_due() == 1
    assert queued_deliveries(redis_client) == [["j1", "completed", "msg_j1_completed", 2]]
    assert redis_client.zcard(keys.WEBHOOK_SCHEDULE) == 0


def test_a_delivery_still_waiting_behind_a_backlog_is_not_queued_again(redis_client):
    finished_job(redis_client)  # its completed delivery waits in the queue
    now = redis_client.zscore(keys.WEBHOOK_OUTSTANDING, "j1|completed")
    assert RetryScheduler(redis_client, lost_after_s=60).requeue_lost(now + 61) == 0
    assert redis_client.llen(tasks.WEBHOOK_QUEUE) == 1


def test_an_attempt_in_progress_counts_as_not_lost(redis_client, settings, monkeypatch):
    finished_job(redis_client)
    redis_client.zadd(keys.WEBHOOK_OUTSTANDING, {"j1|completed": 1.0})  # queued long ago
    during = []

    def slow_post(*args, **kwargs):
        during.append(redis_client.zscore(keys.WEBHOOK_OUTSTANDING, "j1|completed"))
        return AttemptResult(status=204)

    monkeypatch.setattr(webhook_delivery, "post", slow_post)
    webhook_delivery.Deliverer(settings, redis_client).deliver("j1", "completed", "msg_j1_completed", 1)
    assert during and during[0] > time.time() - 5
