"""The fault harness: drive load through nginx, inject one fault, drain, and check every job
that got a 202 against the no-loss oracle ("what goes in must come out").

The oracle, for every accepted job id:
- it reached exactly one terminal state within the deadline (the record says which);
- it was started at most ``1 + faults injected`` times (the record's ``attempts``);
- when it asked for a webhook, the receiver verified its ``completed`` event under one
  ``webhook-id`` (redeliveries reuse the id);
- the API answered no 5xx, except the statuses the fault allows (503 while Redis is down).
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis
import requests

from inferq_client.webhooks import verify

TERMINAL = {"succeeded", "failed", "canceled"}

DIGIT = [[float((r * 8 + c) % 17) for c in range(8)] for r in range(8)]


def digit(_n: int) -> list:
    """The instances of one digits job."""
    return [DIGIT]


def slow(seconds: float):
    """The instances of a chaos job that sleeps ``seconds`` in the forward pass."""
    from tests.fixtures.chaos_layer import SLEEP

    return lambda _n: [[SLEEP, seconds]]
RESULTS = Path(__file__).resolve().parents[2] / "bench" / ".work" / "reliability.json"


@dataclass
class Report:
    """One fault's line in the reliability table."""

    fault: str
    accepted: int = 0
    in_flight_at_fault: int = 0
    lost: int = 0
    ran_twice: int = 0
    failed: int = 0
    recovery_s: float = 0.0
    unavailable_s: float | None = None
    """From the first refused submit after the fault to the next accepted one (None: not measured)."""
    refused: dict = field(default_factory=dict)
    """Non-202 answers by status (503 during an outage or for a request a killed web worker held)."""


class Load:
    """Submits jobs through nginx from a few threads; remembers every answer."""

    def __init__(self, url: str, webhook_url: str | None, concurrency: int = 8):
        self.url = url
        self.webhook_url = webhook_url
        self.concurrency = concurrency
        self.accepted: list[str] = []
        self.accepted_at: dict[str, float] = {}
        """When each accepted job's 202 arrived (time.time())."""
        self.answers: dict[int, int] = {}
        self.timeline: list[tuple[float, int | None]] = []
        """(when the submit was sent, its status or None for a connection error), in answer order."""
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()

    def submit(self, model: str, instances: list) -> str | None:
        """One job; its id when accepted (202), else None."""
        body = {"instances": instances}
        if self.webhook_url:
            body["webhook"] = {"url": self.webhook_url}
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        sent = time.time()
        try:
            response = session.post(f"{self.url}/v1/models/{model}/jobs", json=body, timeout=30)
        except requests.RequestException as exc:
            with self.lock:
                self.errors.append(type(exc).__name__)
                self.timeline.append((sent, None))
            return None
        with self.lock:
            self.timeline.append((sent, response.status_code))
            self.answers[response.status_code] = self.answers.get(response.status_code, 0) + 1
            if response.status_code == 202:
                job_id = response.json()["id"]
                self.accepted.append(job_id)
                self.accepted_at[job_id] = time.time()
                return job_id
        return None

    def burst(self, model: str, instances_for, count: int) -> list[str]:
        """``count`` jobs as fast as ``concurrency`` threads go; returns the accepted ids."""
        with ThreadPoolExecutor(self.concurrency) as pool:
            ids = list(pool.map(lambda n: self.submit(model, instances_for(n)), range(count)))
        return [job_id for job_id in ids if job_id]

    def start_steady(self, model: str, instances_for, pause_s: float = 0.01) -> None:
        """Submit continuously from every thread until ``stop``."""
        def loop(offset: int) -> None:
            n = offset
            while not self.stopping.is_set():
                self.submit(model, instances_for(n))
                n += self.concurrency
                time.sleep(pause_s)

        self._threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(self.concurrency)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(60)

    def unavailability(self, since: float) -> float:
        """Seconds from the first refused submit sent after ``since`` to the first accepted one
        sent after that refusal (0.0 when none was refused)."""
        with self.lock:
            timeline = sorted(entry for entry in self.timeline if entry[0] >= since)
        first_refused = next((sent for sent, status in timeline if status != 202), None)
        if first_refused is None:
            return 0.0
        back = next((sent for sent, status in timeline if status == 202 and sent > first_refused), None)
        return round((back if back is not None else time.time()) - first_refused, 1)

    def refused(self) -> dict:
        statuses = {str(code): n for code, n in self.answers.items() if code != 202}
        if self.errors:
            statuses["connection error"] = len(self.errors)
        return statuses


class Oracle:
    """Checks accepted jobs in Redis, over HTTP and at the webhook receiver."""

    def __init__(self, url: str, redis_url: str, receiver, secret: str, client: redis.Redis | None = None):
        self.url = url
        self.redis = client if client is not None else redis.Redis.from_url(redis_url)
        self.receiver = receiver
        self.secret = secret
        self.session = requests.Session()

    def in_flight(self) -> int:
        """Jobs queued, claimed or running right now, across models."""
        total = 0
        for key in self.redis.scan_iter("inferq:pending:*"):
            total += sum(max(0, int(v)) for v in self.redis.hvals(key))
        return total

    def drain(self, job_ids: list[str], deadline_s: float) -> dict[str, dict]:
        """Each job's last public state once all are terminal or the deadline passed."""
        end = time.monotonic() + deadline_s
        final: dict[str, dict] = {}
        for job_id in job_ids:
            while True:
                remaining = end - time.monotonic()
                try:
                    response = self.session.get(f"{self.url}/v1/jobs/{job_id}",
                                                params={"wait": max(0.0, min(remaining, 10))}, timeout=30)
                    job = response.json() if response.status_code == 200 else {"status": f"http {response.status_code}"}
                except requests.RequestException as exc:
                    job = {"status": f"unreachable: {type(exc).__name__}"}
                if job["status"] in TERMINAL or remaining <= 0:
                    final[job_id] = job
                    break
                time.sleep(0.2)
        return final

    def attempts(self, job_id: str) -> int:
        return int(self.redis.hget(f"inferq:job:{job_id}", "attempts") or 0)

    def webhook_ids(self, job_ids: list[str], deadline_s: float) -> dict[str, set[str]]:
        """Verified ``completed`` webhook ids per job, waiting until each job has one."""
        wanted = set(job_ids)
        end = time.monotonic() + deadline_s
        while True:
            seen: dict[str, set[str]] = {}
            with self.receiver.lock:
                received = list(self.receiver.received)
            for delivery in received:
                event = verify(delivery.body, delivery.headers, self.secret, tolerance_s=3600)
                if event["type"] == "job.completed" and event["data"]["id"] in wanted:
                    seen.setdefault(event["data"]["id"], set()).add(delivery.headers["webhook-id"])
            if set(seen) >= wanted or time.monotonic() > end:
                return seen
            time.sleep(0.2)

    def check(self, report: Report, job_ids: list[str], faults: int, deadline_s: float = 120.0,
              expect: dict[str, str] | None = None, webhooks: bool = True) -> dict[str, dict]:
        """Fill ``report`` and assert the oracle; ``expect`` maps ids to a required status."""
        began = time.monotonic()
        final = self.drain(job_ids, deadline_s)
        report.recovery_s = round(max(report.recovery_s, time.monotonic() - began), 1)
        report.accepted = len(job_ids)
        not_terminal = {i: j["status"] for i, j in final.items() if j["status"] not in TERMINAL}
        report.lost = len(not_terminal)
        attempts = {job_id: self.attempts(job_id) for job_id in job_ids}
        report.ran_twice = sum(1 for n in attempts.values() if n > 1)
        report.failed = sum(1 for j in final.values() if j["status"] == "failed")
        record(report)
        assert not not_terminal, f"{len(not_terminal)} accepted job(s) never ended: {list(not_terminal.items())[:5]}"
        over = {i: n for i, n in attempts.items() if n > 1 + faults}
        assert not over, f"jobs started more than 1 + {faults} times: {list(over.items())[:5]}"
        expect = expect or {}
        wrong = {i: final[i]["status"] for i in job_ids if final[i]["status"] != expect.get(i, "succeeded")}
        assert not wrong, f"unexpected end states: {list(wrong.items())[:5]}"
        if webhooks:
            ids = self.webhook_ids(job_ids, 60)
            missing = [i for i in job_ids if i not in ids]
            assert not missing, f"{len(missing)} job(s) without a verified completed webhook: {missing[:5]}"
            doubled = {i: s for i, s in ids.items() if len(s) != 1}
            assert not doubled, f"jobs with more than one webhook-id: {list(doubled.items())[:3]}"
        return final


def assert_no_5xx(load: Load, allowed: set[int] = frozenset()) -> None:
    bad = {code: n for code, n in load.answers.items() if code >= 500 and code not in allowed}
    assert not bad, f"the API answered {bad}"


def record(report: Report) -> None:
    """Append (or replace) this fault's line in the results file the table is built from."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    rows = [row for row in rows if row["fault"] != report.fault] + [asdict(report)]
    RESULTS.write_text(json.dumps(rows, indent=2))
