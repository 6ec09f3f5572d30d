"""Priority lanes, fair share, queue deadlines, admission and queue position, on fakeredis."""
import time

import pytest

from shared import celery_message, keys, service_rate
from shared.errors import InvalidInput
from shared.job_store import StartOutcome
from shared.jobs import Job, JobStatus
from shared.lanes import Priority, parse_max_queue_s, parse_priority, share_period
from shared.queue import WaitTooLong, placement
from shared.tasks import PREDICT_TASK
from tests.fixtures.lanes import waiting_count
from tests.unit.test_consumer import make_consumer
from workers.inference.batching import BatchPolicy
from workers.webhooks.deadline_sweep import expire_due


def queue_job(queue, job_id, priority=Priority.NORMAL, owner="", max_queue_s=0.0, created_at=None):
    job = Job(id=job_id, model="digits", model_version="1", instances_json=b"[[1]]", priority=priority,
              owner=owner, max_queue_s=max_queue_s, created_at=created_at or time.time())
    queue.submit(job)
    return job


def claimed_ids(consumer, wanted, first=True):
    return [celery_message.job_id_of(m, PREDICT_TASK) for m in consumer.claim(wanted, first=first)]


def test_high_runs_before_normal_and_normal_before_low(redis_client):
    consumer, _, queue = make_consumer(redis_client)
    for job_id, lane in [("l1", Priority.LOW), ("n1", Priority.NORMAL), ("h1", Priority.HIGH), ("l2", Priority.LOW)]:
        queue_job(queue, job_id, lane)
    assert claimed_ids(consumer, 10, first=False) == ["h1", "n1", "l1", "l2"]


def test_a_key_with_thousands_queued_delays_another_keys_job_by_about_one_turn(redis_client):
    consumer, _, queue = make_consumer(redis_client)
    for n in range(500):
        queue_job(queue, f"a{n}", owner="key-a")
    claimed_ids(consumer, 3, first=False)  # the worker is already serving A
    queue_job(queue, "b0", owner="key-b")
    assert "b0" in claimed_ids(consumer, 2, first=False)


def test_each_owners_jobs_stay_first_in_first_out_while_owners_alternate(redis_client):
    consumer, _, queue = make_consumer(redis_client)
    for n in range(3):
        queue_job(queue, f"a{n}", owner="key-a")
    for n in range(3):
        queue_job(queue, f"b{n}", owner="key-b")
    order = claimed_ids(consumer, 6, first=False)
    assert [j for j in order if j.startswith("a")] == ["a0", "a1", "a2"]
    assert [j for j in order if j.startswith("b")] == ["b0", "b1", "b2"]
    assert {order[0][0], order[1][0]} == {"a", "b"} and {order[2][0], order[3][0]} == {"a", "b"}


def test_every_tenth_batch_starts_with_the_low_lane_and_another_with_the_normal_one(redis_client):
    consumer, _, queue = make_consumer(redis_client)
    for n in range(30):
        queue_job(queue, f"h{n}", Priority.HIGH)
        queue_job(queue, f"n{n}", Priority.NORMAL)
        queue_job(queue, f"l{n}", Priority.LOW)
    firsts = [claimed_ids(consumer, 1)[0][0] for _ in range(20)]
    assert firsts.count("l") == 2 and firsts.count("n") == 2 and firsts.count("h") == 16


def test_the_share_period_is_at_least_three_batches_and_zero_means_strict_priority():
    assert share_period(0.1) == 10 and share_period(0.5) == 3 and share_period(0) == 0


def test_positions_rise_within_a_lane_and_high_jobs_stand_ahead_of_low_ones(redis_client):
    _, _, queue = make_consumer(redis_client)
    lows = [queue.submit(Job(id=f"l{n}", model="digits", model_version="1", priority=Priority.LOW)).position
            for n in range(4)]
    highs = [queue.submit(Job(id=f"h{n}", model="digits", model_version="1", priority=Priority.HIGH)).position
             for n in range(2)]
    assert lows == [0, 1, 2, 3] and highs == [0, 1]
    low_job = Job(id="l3", model="digits", model_version="1", priority=Priority.LOW)
    assert placement(redis_client, low_job).position == 5  # two high jobs now start first
    assert placement(redis_client, low_job).eta_s is None  # no throughput measured yet


def measured(redis_client, now, ended, busy_s):
    """As if workers had ended ``ended`` jobs in ``busy_s`` seconds of batches."""
    ended_keys, busy_keys = service_rate.window_keys("digits", now)
    redis_client.set(ended_keys[0], ended)
    redis_client.set(busy_keys[0], busy_s)


def test_the_eta_is_the_position_at_the_busy_rate_times_the_live_workers(redis_client):
    consumer, _, queue = make_consumer(redis_client)
    now = time.time()
    measured(redis_client, now, ended=100, busy_s=2.0)  # 50 jobs per busy second
    for n in range(3):
        queue_job(queue, f"j{n}", created_at=now)
    place = placement(redis_client, Job(id="j2", model="digits", model_version="1"), now)
    assert place.position == 2 and place.eta_s == pytest.approx(2 / 50)
    consumer.heartbeat()
    redis_client.zadd(keys.workers("digits"), {"w2": time.time()})
    assert placement(redis_client, Job(id="j2", model="digits", model_version="1"), now).eta_s == pytest.approx(2 / 100)


def test_a_quiet_spell_does_not_lower_the_rate_an_eta_is_built_on(redis_client):
    now = time.time()
    measured(redis_client, now, ended=3, busy_s=0.01)  # three jobs in a quiet half-minute, run in 10 ms
    assert service_rate.measure(redis_client, "digits", now) == pytest.approx(300)


def test_admission_refuses_a_job_whose_wait_would_exceed_its_deadline_and_stores_nothing(redis_client):
    _, _, queue = make_consumer(redis_client)
    now = time.time()
    measured(redis_client, now, ended=10, busy_s=10.0)  # one job per second
    for n in range(5):
        queue_job(queue, f"j{n}", created_at=now)
    with pytest.raises(WaitTooLong) as refused:
        queue_job(queue, "late", max_queue_s=2, created_at=now)
    assert refused.value.wait_s == pytest.approx(5, rel=0.05)
    assert not redis_client.exists(keys.job("late")) and waiting_count(redis_client, "digits") == 5
    queue_job(queue, "patient", max_queue_s=30, created_at=now)  # a longer deadline fits
    assert redis_client.exists(keys.job("patient"))


def test_admission_admits_when_nothing_is_queued_or_nothing_was_measured(redis_client):
    _, _, queue = make_consumer(redis_client)
    queue_job(queue, "first", max_queue_s=0.01)
    queue_job(queue, "second", max_queue_s=0.01)  # one queued, but no throughput measured: admit
    assert waiting_count(redis_client, "digits") == 2


def test_a_job_unstarted_at_its_deadline_expires_without_running_and_queues_its_webhook(redis_client):
    consumer, store, queue = make_consumer(redis_client)
    job = Job(id="late", model="digits", model_version="1", instances_json=b"[[1]]", max_queue_s=1,
              created_at=time.time() - 5, webhook={"url": "https://example.com/h", "events": ["completed"]})
    queue.submit(job)
    assert expire_due(redis_client, store) == 1
    ended = store.get_public("late")
    assert ended.status is JobStatus.EXPIRED and ended.started_at is None and ended.predictions_json is None
    assert ended.error["type"] == "QueueTimeout"
    assert waiting_count(redis_client, "digits") == 0 and redis_client.zcard(keys.QUEUE_DEADLINES) == 0
    assert redis_client.llen("inferq.webhooks") == 1
    assert redis_client.hget(keys.METRICS_FINISHED, "digits|expired") == b"1"
    assert consumer.claim(10, first=True) == []


def test_a_started_job_is_never_expired(redis_client):
    consumer, store, queue = make_consumer(redis_client)
    queue_job(queue, "quick", max_queue_s=60)
    consumer.claim(1, first=True)
    assert store.start("quick", "w1").outcome is StartOutcome.STARTED
    redis_client.zadd(keys.QUEUE_DEADLINES, {"quick": 0})  # as if its deadline had come
    assert expire_due(redis_client, store) == 0
    assert store.get_status("quick") is JobStatus.RUNNING


def test_a_claimed_job_past_its_deadline_is_not_started(redis_client):
    consumer, store, queue = make_consumer(redis_client)
    queue_job(queue, "stale", max_queue_s=1, created_at=time.time() - 5)
    consumer.claim(1, first=True)
    assert store.start("stale", "w1").outcome is StartOutcome.PAST_DEADLINE
    consumer.process(consumer.claim(1, first=True) or redis_client.lrange(consumer.in_flight, 0, -1), time.time())
    assert store.get_status("stale") is JobStatus.EXPIRED


def test_canceling_a_queued_job_takes_it_out_of_its_lane(redis_client):
    consumer, store, queue = make_consumer(redis_client)
    job = queue_job(queue, "gone", Priority.LOW)
    queue_job(queue, "kept", Priority.LOW)
    assert store.cancel(job)
    assert claimed_ids(consumer, 10) == ["kept"]


def test_the_doorbell_holds_one_token_per_claimable_job_up_to_its_cap(redis_client):
    consumer, _, queue = make_consumer(redis_client, BatchPolicy(max_batch_size=2))
    for n in range(100):
        queue_job(queue, f"j{n}")
    assert redis_client.llen(keys.doorbell("digits")) == 64
    consumer.claim(40, first=True)
    assert redis_client.llen(keys.doorbell("digits")) == 60
    consumer.claim(100, first=True)
    assert not redis_client.exists(keys.doorbell("digits"))


@pytest.mark.parametrize("value", ["urgent", "", 3, True, ["high"]])
def test_an_unknown_priority_is_refused(value):
    with pytest.raises(InvalidInput):
        parse_priority(value)


@pytest.mark.parametrize("value", [0, -1, 90_000, "soon", "nan", True, [1]])
def test_a_queue_deadline_outside_zero_to_the_job_ttl_is_refused(value):
    with pytest.raises(InvalidInput):
        parse_max_queue_s(value, 86_400)


def test_a_queue_deadline_may_be_given_as_header_text():
    assert parse_max_queue_s(" 2.5 ", 86_400) == 2.5 and parse_max_queue_s(None, 10) == 0
