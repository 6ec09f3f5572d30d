"""Long-poll: returns when the job ends, and after the wait when it does not."""
import threading
import time

from tests.integration.helpers import submit


def test_long_poll_returns_as_soon_as_the_job_ends(stack, http, digits):
    job_id = submit(http, stack.url, "digits", digits.images[:1].tolist()).json()["id"]
    started = time.monotonic()
    job = http.get(f"{stack.url}/v1/jobs/{job_id}", params={"wait": 25}, timeout=40).json()
    elapsed = time.monotonic() - started
    assert job["status"] == "succeeded"
    assert elapsed < 10, f"long-poll held for {elapsed:.1f}s after the job ended"


def test_long_poll_on_a_waiting_job_times_out_then_completes_when_a_worker_returns(stack, http):
    stack.supervisorctl("stop", "worker-faulty")
    try:
        job_id = submit(http, stack.url, "faulty", [[1, 2, 3, 4]]).json()["id"]
        started = time.monotonic()
        job = http.get(f"{stack.url}/v1/jobs/{job_id}", params={"wait": 1.5}, timeout=30).json()
        assert job["status"] == "queued"
        assert time.monotonic() - started >= 1.5
    finally:
        stack.supervisorctl("start", "worker-faulty")
    job = http.get(f"{stack.url}/v1/jobs/{job_id}", params={"wait": 30}, timeout=40).json()
    if job["status"] == "queued":
        job = http.get(f"{stack.url}/v1/jobs/{job_id}", params={"wait": 30}, timeout=40).json()
    assert job["status"] == "succeeded"


def test_wait_is_capped_by_configuration(stack, http):
    # The cap (30 s by default) bounds any request; an absurd wait is not an error.
    job_id = submit(http, stack.url, "digits", [[[0] * 8] * 8]).json()["id"]
    response = http.get(f"{stack.url}/v1/jobs/{job_id}", params={"wait": 10**9}, timeout=40)
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"


def test_an_answer_woken_by_the_finish_is_the_job_exactly_as_get_shows_it(stack, http, digits):
    # Woken requests answer with the finish's own announcement instead of reading the job back.
    stack.supervisorctl("stop", "worker-digits")
    try:
        waited = []
        submitted = http.post(f"{stack.url}/v1/models/digits/jobs", json={"instances": digits.images[:3].tolist()},
                              headers={"Prefer": "wait=0"}, timeout=30).json()
        poll = threading.Thread(target=lambda: waited.append(http.get(
            f"{stack.url}/v1/jobs/{submitted['id']}", params={"wait": 30}, timeout=40)))
        poll.start()
        time.sleep(1.0)  # the long-poll is parked before any worker can finish the job
    finally:
        stack.supervisorctl("start", "worker-digits")
    poll.join(60)
    [answer] = waited
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    assert answer.json() == http.get(f"{stack.url}/v1/jobs/{submitted['id']}", timeout=10).json()
    assert len(answer.json()["predictions"]) == 3 and answer.json()["labels"]
