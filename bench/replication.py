"""What a replicated Redis costs: one node against a primary with two replicas and Sentinels.

    .venv/bin/python -m bench.replication [--duration 8] [--rounds 3]

Three stacks serve the demo digits model (one worker each), all up at once and loaded in turn,
round after round, so each ratio compares runs a few seconds apart on this noisy machine:

- **one node**: ``make run``'s single Redis (no Sentinel, no ``WAIT``);
- **replicated, MIN_REPLICAS=0**: ``INFERQ_LOCAL_REDIS_REPLICAS=2``, every process through
  the Sentinels, asynchronous replication only;
- **replicated, MIN_REPLICAS=1**: the same, each submit held until a replica confirms it
  (``WAIT``), and each finish and webhook write waiting for it too (what ``make run`` sets
  with replicas).

Each run is the ``inferq`` flow of bench/loadgen.py (submit with ``Prefer: wait``, then
long-polls), one instance per job, through nginx: p50 at 1 job in flight, jobs/s at 32.
Figures are medians over rounds; ratios are medians of per-round ratios to one node.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import sections  # noqa: E402
from bench.measure import WORK, loadgen  # noqa: E402
from tests.integration.stack import copy_demo_model, free_port, start_stack, stop_stack  # noqa: E402

START, END = "<!-- replication:start -->", "<!-- replication:end -->"


def kept_section(results_md: Path) -> str:
    """This section of an existing RESULTS.md, markers included ('' if none)."""
    return sections.kept(results_md, START, END)
DURATION_S, ROUNDS = 8.0, 3
THROUGHPUT_GOAL = 0.8
SETUPS = {
    "one node": {},
    "replicated, MIN_REPLICAS=0": {"INFERQ_LOCAL_REDIS_REPLICAS": "2", "INFERQ_REDIS_MIN_REPLICAS": "0"},
    "replicated, MIN_REPLICAS=1": {"INFERQ_LOCAL_REDIS_REPLICAS": "2", "INFERQ_REDIS_MIN_REPLICAS": "1"},
}


def payload() -> Path:
    from sklearn.datasets import load_digits

    path = WORK / "replication-digits.json"
    path.write_bytes(orjson.dumps({"instances": load_digits().images[:1].astype(int).tolist()}))
    return path


def start(name: str, extra: dict) -> object:
    base = WORK / f"stack-replication-{len(extra)}-{extra.get('INFERQ_REDIS_MIN_REPLICAS', 'x')}"
    shutil.rmtree(base, ignore_errors=True)
    copy_demo_model(base / "models")
    env = {"INFERQ_REDIS_APPENDFSYNC": "always", **extra}
    if extra:
        env["INFERQ_LOCAL_SENTINEL_PORT"] = str(free_port())
    return start_stack(base, base / "models", {"digits"}, env)


def measure(duration: float, rounds: int) -> list[dict]:
    stacks = {}
    body = payload()
    try:
        for name, extra in SETUPS.items():
            stacks[name] = start(name, extra)
        time.sleep(15)  # the Sentinels learn the replicas (they read the primary's INFO every 10 s)
        found = []
        for _ in range(rounds):
            row = {}
            for name, stack in stacks.items():
                single = loadgen(stack.url, "inferq", "digits", body, 1, 1, duration)
                loaded = loadgen(stack.url, "inferq", "digits", body, 1, 32, duration)
                row[name] = {"p50_ms": single["p50_ms"], "jobs_per_s": loaded["jobs_per_s"],
                             "errors": single["errors"] + loaded["errors"]}
            found.append(row)
        return found
    finally:
        for stack in stacks.values():
            stop_stack(stack)


def summarize(rounds: list[dict]) -> dict:
    def median(name, figure):
        return statistics.median(r[name][figure] for r in rounds)

    def ratio(name, figure):
        return statistics.median(r[name][figure] / r["one node"][figure] for r in rounds)

    return {name: {"p50_ms": median(name, "p50_ms"), "jobs_per_s": median(name, "jobs_per_s"),
                   "p50_ratio": ratio(name, "p50_ms"), "throughput_ratio": ratio(name, "jobs_per_s"),
                   "errors": sum(r[name]["errors"] for r in rounds)} for name in SETUPS} | {"rounds": len(rounds)}


def render(found: dict, command: str) -> str:
    lines = [START, "## Replicated Redis (Sentinel, WAIT)", "",
             f"Produced by `{command}` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, {os.cpu_count()} CPUs): "
             "digits, one worker, one instance per job, submit with `Prefer: wait` plus long-polls, through nginx. "
             "Three stacks up at once, loaded in turn; every Redis node has `appendfsync always`. Medians of "
             f"{found['rounds']} rounds; ratios are medians of per-round ratios to one node.", "",
             "| setup | p50 ms, 1 in flight | jobs/s, 32 in flight | p50 vs one node | jobs/s vs one node | failed |",
             "|---|---|---|---|---|---|"]
    for name in SETUPS:
        row = found[name]
        lines.append(f"| {name} | {row['p50_ms']:.1f} | {row['jobs_per_s']:.0f} | {row['p50_ratio']:.2f}x | "
                     f"{row['throughput_ratio']:.2f}x | {row['errors']} |")
    kept = found["replicated, MIN_REPLICAS=1"]["throughput_ratio"]
    lines += ["", f"- Goal: the replicated setup keeps at least {THROUGHPUT_GOAL}x the one-node throughput: "
              f"{kept:.2f}x, {'met' if kept >= THROUGHPUT_GOAL else 'not met'}.",
              "- What `MIN_REPLICAS=1` adds to each job: the submit's `WAIT` (in the same round trip as the submit "
              "script), one more round trip to release the job into its lane, and a `WAIT` after each batch's "
              "finish. The two replicas (AOF fsync once a second: `WAIT` confirms a write in a replica's memory) and "
              "three Sentinels share the same two cores as the rest of the stack here, so replication's CPU is taken "
              "from the stack; on separate hosts a `WAIT` costs one network round trip to the nearest replica.", END]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    command = f".venv/bin/python -m bench.replication --duration {args.duration:g} --rounds {args.rounds}"
    rounds = measure(args.duration, max(1, args.rounds))
    sections.publish(ROOT / "bench" / "RESULTS.md", WORK / "replication.json", rounds,
                     render(summarize(rounds), command), START, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
