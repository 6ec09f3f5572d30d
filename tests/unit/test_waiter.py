"""Long-poll waiting: wakes on the completion message, times out otherwise."""
import threading
import time

from shared import keys
from web.waiter import CompletionWaiter


def wait(waiter: CompletionWaiter, job_id: str, timeout_s: float, is_done) -> bool:
    with waiter.watching(job_id) as watch:
        return waiter.wait_on(watch, timeout_s, is_done)


def test_waiter_wakes_when_the_job_finished_message_arrives(redis_client):
    waiter = CompletionWaiter(redis_client, keys.JOB_FINISHED_CHANNEL)
    done = threading.Event()

    def finish_later():
        time.sleep(0.3)
        done.set()
        redis_client.publish(keys.JOB_FINISHED_CHANNEL, "job-1")

    threading.Thread(target=finish_later).start()
    checks = []

    def is_done():
        checks.append(1)
        return done.is_set()

    started = time.monotonic()
    assert wait(waiter, "job-1", 10.0, is_done) is True
    assert time.monotonic() - started < 5.0
    # Woken by the message, not by re-reading the status in a loop.
    assert len(checks) <= 3


def test_waiter_returns_false_after_its_timeout(redis_client):
    waiter = CompletionWaiter(redis_client, keys.JOB_FINISHED_CHANNEL)
    started = time.monotonic()
    assert wait(waiter, "job-2", 0.5, lambda: False) is False
    assert time.monotonic() - started >= 0.5


def test_waiter_returns_at_once_for_a_finished_job(redis_client):
    waiter = CompletionWaiter(redis_client, keys.JOB_FINISHED_CHANNEL)
    assert wait(waiter, "job-3", 30.0, lambda: True) is True


def test_messages_for_other_jobs_do_not_end_the_wait(redis_client):
    waiter = CompletionWaiter(redis_client, keys.JOB_FINISHED_CHANNEL)
    threading.Timer(0.2, redis_client.publish, args=(keys.JOB_FINISHED_CHANNEL, "other")).start()
    assert wait(waiter, "job-4", 0.6, lambda: False) is False


def test_a_watch_carries_the_job_json_its_finish_announced(redis_client):
    waiter = CompletionWaiter(redis_client, keys.JOB_FINISHED_CHANNEL)
    announcement = b'{"id":"job-5","status":"succeeded"}'
    threading.Timer(0.2, redis_client.publish, args=(keys.JOB_FINISHED_CHANNEL, b"job-5\n" + announcement)).start()
    with waiter.watching("job-5") as watch:
        assert waiter.wait_on(watch, 10.0, lambda: False, check_first=False) is True
    assert watch.announced == announcement
