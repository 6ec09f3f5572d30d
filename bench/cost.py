"""Where a job's CPU goes: microseconds per finished job for each process of the stack.

    .venv/bin/python -m bench.cost [--duration 5] [--rounds 3] [--against COMMIT]

One stack serving the demo digits model (as ``make run`` starts it) takes three closed-loop
loads from ``bench.loadgen`` (submit with ``Prefer: wait``, then long-poll until the job
ends), round after round: one single-instance job in flight, 32 in flight, and 100-instance
jobs 8 in flight. Around every run the CPU time (user + system, from /proc) of each process
under the launcher is read and grouped by role (nginx, gunicorn/Flask, Redis, the inference
worker, the webhook worker, supervisord and the launcher), the load generator's own CPU is
read from this process's children, and jobs are counted in the stack's own metrics.

On two shared cores the jobs/s of one configuration swings by tens of percent between runs;
CPU per job barely moves, and on a CPU-bound machine capacity is its inverse. So this is the
breakdown that says which goal is reachable and which process to work on.

``--against COMMIT`` (by default the last commit before the per-job cost work) checks that
commit out under bench/.work and runs its stack beside this one, each taking every load in
turn: a change to the hot path is judged by ratios measured in one run, never against
figures from another day.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import sections  # noqa: E402
from bench.measure import WORK, finished_jobs, loadgen, log, tree_cpu_s  # noqa: E402
from tests.integration.stack import copy_demo_model, start_stack, stop_stack  # noqa: E402

START, END = "<!-- cost:start -->", "<!-- cost:end -->"
BEFORE = "ee40646"
"""The last commit before the per-job cost work; ``make bench`` runs its stack beside this one."""
LOADS = (("1 job in flight", 1, 1), ("32 jobs in flight", 1, 32), ("100-instance jobs, 8 in flight", 100, 8))
"""(name, instances per job, jobs in flight)."""
ROLES = ("nginx", "gunicorn/Flask", "Redis", "inference worker", "webhook worker", "supervisord/launcher",
         "load generator")
REQUEST_KINDS = (("`GET /healthz` (per request)", "healthz"), ("submit with `Prefer: wait`", "inferq"),
                 ("submit, then `GET ?wait=`", "inferq-get"), ("submit answered 202, no wait", "inferq-submit"))
"""(name, ``bench.loadgen`` flow): how a job is asked for; ``/healthz`` is the floor every request pays."""


def kept_section(results_md: Path) -> str:
    """This section of an existing RESULTS.md, markers included ('' if none)."""
    return sections.kept(results_md, START, END)


def role_of(command: str) -> str:
    """The role of a process of the stack, from its command line."""
    for needle, role in (("nginx", "nginx"), ("gunicorn", "gunicorn/Flask"), ("redis-server", "Redis"),
                         ("valkey", "Redis"), ("workers.webhooks", "webhook worker"),
                         ("workers.inference", "inference worker"), ("celery", "inference worker")):
        if needle in command:
            return role
    return "supervisord/launcher"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(stack, client: redis.Redis, payload: Path, instances: int, in_flight: int, duration: float) -> dict:
    """One load run: its loadgen figures and each role's CPU microseconds per finished job."""
    before, loadgen_before, jobs = tree_cpu_s(stack.process.pid, role_of), children_cpu_s(), finished_jobs(client)
    result = loadgen(stack.url, "inferq", "digits", payload, instances, in_flight, duration)
    after, jobs = tree_cpu_s(stack.process.pid, role_of), max(finished_jobs(client) - jobs, 1)
    spent = {role: after.get(role, 0.0) - before.get(role, 0.0) for role in ROLES}
    spent["load generator"] = children_cpu_s() - loadgen_before
    return {**result, "us_per_job": {role: seconds * 1e6 / jobs for role, seconds in spent.items()}}


def request_costs(stack, payload: Path, in_flight: int = 16, duration: float = 3.0) -> list[dict]:
    """CPU microseconds per answered job of nginx and the web processes, by how the job is asked for.

    No warm-up, so every request the CPU paid for is counted; the 202-only run goes last, as the
    jobs it queues still run after it ends.
    """
    rows = []
    for name, flow in REQUEST_KINDS:
        before = tree_cpu_s(stack.process.pid, role_of)
        result = loadgen(stack.url, flow, "digits", payload, 1, in_flight, duration, warmup=0)
        after = tree_cpu_s(stack.process.pid, role_of)
        answered = max(result["completed"], 1)
        rows.append({"kind": name, "per_s": result["jobs_per_s"], "errors": result["errors"],
                     "us": {role: (after.get(role, 0.0) - before.get(role, 0.0)) * 1e6 / answered
                            for role in ("nginx", "gunicorn/Flask")}})
    return rows


def request_table(rows: list[dict]) -> list[str]:
    """The web tier's CPU per job by request kind, for the reader who asks where gunicorn/Flask's share goes."""
    lines = ["", "What nginx and the web processes spend per job by how it is asked for (this checkout, one digit "
             "per job, 16 in flight, 3 s each, no warm-up): `GET /healthz` is what any request costs before any "
             "inferq code runs.", "", "| request | answered/s | nginx µs | gunicorn/Flask µs | errors |",
             "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['kind']} | {row['per_s']:.0f} | {row['us']['nginx']:.0f} | "
                     f"{row['us']['gunicorn/Flask']:.0f} | {row['errors']} |")
    return lines


def payload_of(instances: int) -> Path:
    from sklearn.datasets import load_digits

    path = WORK / f"cost-digits-x{instances}.json"
    images = load_digits().images
    path.write_bytes(orjson.dumps({"instances": images[:instances].astype(int).tolist()}))
    return path


def measure(duration: float, rounds: int, against: str | None) -> tuple[dict[str, list[dict]], list[dict]]:
    """This checkout's stack, and with ``against`` that commit's beside it, loaded in turn; then
    this checkout's web tier by request kind."""
    codes = {"this checkout": ROOT}
    if against:
        codes[f"commit {against}"] = worktree(against)
    stacks, runs = {}, {label: {name: [] for name, _, _ in LOADS} for label in codes}
    try:
        for number, (label, code) in enumerate(codes.items()):
            base = WORK / f"stack-cost-{number}"
            shutil.rmtree(base, ignore_errors=True)
            copy_demo_model(base / "models")
            stacks[label] = start_stack(base, base / "models", {"digits"}, {"INFERQ_AUTOSCALE": "false"}, code=code)
        clients = {label: redis.Redis.from_url(stack.redis_url()) for label, stack in stacks.items()}
        payloads = {instances: payload_of(instances) for _, instances, _ in LOADS}
        labels = list(codes)
        for number in range(rounds):
            log(f"round {number + 1} of {rounds}")
            for name, instances, in_flight in LOADS:
                for label in labels[number % len(labels):] + labels[:number % len(labels)]:  # each goes first in turn
                    runs[label][name].append(run_once(stacks[label], clients[label], payloads[instances],
                                                      instances, in_flight, duration))
        by_kind = request_costs(stacks[labels[0]], payloads[1])
    finally:
        for stack in stacks.values():
            stop_stack(stack)
        if against:
            subprocess.run(["git", "worktree", "remove", "--force", str(codes[f"commit {against}"])], cwd=ROOT)
    return {label: [summary(name, instances, in_flight, by_load[name]) for name, instances, in_flight in LOADS]
            for label, by_load in runs.items()}, by_kind


def worktree(commit: str) -> Path:
    """A checkout of ``commit`` under bench/.work, for its stack to run beside this one."""
    path = WORK / f"code-{commit}"
    if path.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT)
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=ROOT, check=True,
                   capture_output=True)
    return path


def summary(name: str, instances: int, in_flight: int, runs: list[dict]) -> dict:
    """Medians over the rounds: jobs/s, latency and each role's CPU per job."""
    us = {role: statistics.median(r["us_per_job"][role] for r in runs) for role in ROLES}
    stack_us = [sum(v for role, v in r["us_per_job"].items() if role != "load generator") for r in runs]
    return {"load": name, "instances": instances, "in_flight": in_flight,
            "jobs_per_s": statistics.median(r["jobs_per_s"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] or 0 for r in runs), "us_per_job": us,
            "total_us": sum(v for role, v in us.items() if role != "load generator"),
            "rounds": [{"stack_us": total, "jobs_per_s": r["jobs_per_s"]} for total, r in zip(stack_us, runs, strict=True)]}


def paired_ratio(now: dict, then: dict, figure: str) -> float:
    """The median over rounds of this round's figure over the other stack's in the same round."""
    return statistics.median(a[figure] / b[figure] for a, b in zip(now["rounds"], then["rounds"], strict=True))


def render(results: dict[str, list[dict]], by_kind: list[dict], command: str) -> str:
    labels = list(results)
    lines = [START, "## Where a job's CPU goes", "",
             f"Produced by `{command}` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, {os.cpu_count()} CPUs): "
             "CPU microseconds (user + system) each process of the stack spent per finished job, medians over the "
             "rounds; *stack* sums every role but the load generator, and *ceiling* is the jobs/s at which stack and "
             f"load generator together would fill all {os.cpu_count()} cores."]
    if len(labels) > 1:
        lines.append(f"Both stacks ran side by side and took each load in turn; *vs {labels[1]}* is the median, over "
                     "the rounds, of this checkout's figure over that commit's in the same round (stack µs/job: below 1 "
                     "is cheaper).")
    header = "| code | load | jobs/s | p50 ms | " + " | ".join(ROLES) + " | stack µs/job | ceiling jobs/s |"
    lines += ["", header, "|" + "---|" * (header.count("|") - 1)]
    for label in labels:
        for row in results[label]:
            ceiling = (os.cpu_count() or 1) * 1e6 / (row["total_us"] + row["us_per_job"]["load generator"])
            cells = " | ".join(f"{row['us_per_job'][role]:.0f}" for role in ROLES)
            lines.append(f"| {label} | {row['load']} | {row['jobs_per_s']:.0f} | {row['p50_ms']:.1f} | {cells} | "
                         f"{row['total_us']:.0f} | {ceiling:.0f} |")
    if len(labels) > 1:
        lines += ["", f"| load | stack µs/job vs {labels[1]} | jobs/s vs {labels[1]} |", "|---|---|---|"]
        for now, then in zip(results[labels[0]], results[labels[1]], strict=True):
            lines.append(f"| {now['load']} | {paired_ratio(now, then, 'stack_us'):.2f}x | "
                         f"{paired_ratio(now, then, 'jobs_per_s'):.2f}x |")
    return "\n".join([*lines, *request_table(by_kind), END]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each load")
    parser.add_argument("--against", metavar="COMMIT", default=BEFORE,
                        help="also run this commit's stack beside this checkout's ('' for none)")
    args = parser.parse_args()
    command = f"make bench (.venv/bin/python -m bench.cost --duration {args.duration:g} --rounds {args.rounds}" \
              f"{f' --against {args.against}' if args.against else ''})"
    WORK.mkdir(parents=True, exist_ok=True)
    results, by_kind = measure(args.duration, max(1, args.rounds), args.against or None)
    (WORK / "cost.json").write_text(orjson.dumps({"loads": results, "requests": by_kind},
                                                 option=orjson.OPT_INDENT_2).decode())
    section = render(results, by_kind, command)
    sections.replace(ROOT / "bench" / "RESULTS.md", section, START, END)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
