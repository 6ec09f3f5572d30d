"""What tracing costs: tracing off, on with sampling 1.0, and on with sampling 0.01.

    .venv/bin/python -m bench.tracing [--duration 5] [--rounds 9]

Three stacks serving the demo digits model run side by side, one per configuration, and
take the same closed-loop load (``bench.loadgen``: one instance per job, 32 jobs in flight,
through nginx on 127.0.0.1) in turn, round after round, each configuration going first in
turn, so a machine whose load drifts (other work on its two cores) weighs on all of them.
Two figures per run: jobs/s, and the CPU time every process of the stack spent per finished
job (user + system, read from /proc for the launcher's whole process tree, jobs counted in
the stack's own metrics). On a shared machine jobs/s swings by tens of percent between two
runs of one configuration; CPU per job barely moves, and on a CPU-bound machine capacity is
its inverse, so the goal is judged on it (both are shown, medians over the rounds).
Traced stacks export over OTLP/HTTP to a sink in this process on 127.0.0.1 that accepts and
counts the requests without decoding them, so the exporters do their full work. The sampler
is ``parentbased_traceidratio``: the API decides per job, the worker and the webhook follow.
The section it writes into bench/RESULTS.md sits between markers, so other benchmarks keep it.
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
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import sections  # noqa: E402
from bench.measure import WORK, finished_jobs, loadgen, log, tree_cpu_s  # noqa: E402
from tests.integration.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.integration.stack import copy_demo_model, start_stack, stop_stack  # noqa: E402

START, END = "<!-- tracing:start -->", "<!-- tracing:end -->"
CONCURRENCY = 32
DURATION_S, ROUNDS = 5.0, 9
"""Seconds measured per run (after the load generator's 2 s warm-up), and runs per configuration."""
GOAL = 0.95
"""At sampling 0.01, tracing may cost at most 5% of an untraced stack's capacity."""

CONFIGS = {"off": None, "on, sampling 1.0": "1.0", "on, sampling 0.01": "0.01"}
"""Configuration name -> sampling ratio (None: no OTEL_* variable set at all)."""


def kept_section(results_md: Path) -> str:
    """The tracing section of an existing RESULTS.md, markers included ('' if none)."""
    return sections.kept(results_md, START, END)


def tracing_env(ratio: str | None, sink: OtlpReceiver) -> dict[str, str]:
    """The standard OpenTelemetry environment of one configuration."""
    if ratio is None:
        return {}
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": ratio}


def run_once(stack, client: redis.Redis, payload: Path, duration: float) -> dict:
    """One load run, with the CPU the stack spent per job it finished meanwhile."""
    cpu, jobs = tree_cpu_s(stack.process.pid)["all"], finished_jobs(client)
    result = loadgen(stack.url, "inferq", "digits", payload, 1, CONCURRENCY, duration)
    cpu, jobs = tree_cpu_s(stack.process.pid)["all"] - cpu, finished_jobs(client) - jobs
    return {**result, "cpu_ms_per_job": cpu * 1000 / max(jobs, 1)}


def start(ratio: str | None, sink: OtlpReceiver):
    """A stack with the configuration's environment."""
    base = WORK / f"stack-tracing-{ratio or 'off'}"
    shutil.rmtree(base, ignore_errors=True)
    copy_demo_model(base / "models")
    env = {"INFERQ_REDIS_APPENDFSYNC": "always", "INFERQ_MAX_BATCH_SIZE": "64", **tracing_env(ratio, sink)}
    return start_stack(base, base / "models", {"digits"}, env)


def measure(payload: Path, duration: float, rounds: int) -> list[dict]:
    """Every configuration's stack up at once, loaded in turn ``rounds`` times; one row each."""
    sinks = {name: OtlpReceiver(decode_spans=False) for name in CONFIGS}
    stacks = {}
    runs: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    try:
        for name, ratio in CONFIGS.items():
            stacks[name] = start(ratio, sinks[name])
        clients = {name: redis.Redis.from_url(stack.redis_url()) for name, stack in stacks.items()}
        names = list(CONFIGS)
        for number in range(rounds):
            log(f"round {number + 1} of {rounds}")
            for name in names[number % len(names):] + names[:number % len(names)]:  # each goes first in turn
                runs[name].append(run_once(stacks[name], clients[name], payload, duration))
    finally:
        for stack in stacks.values():
            stop_stack(stack)
        for sink in sinks.values():
            sink.close()
    return [row(name, runs[name], runs["off"], sinks[name]) for name in CONFIGS]


def row(name: str, runs: list[dict], off: list[dict], sink: OtlpReceiver) -> dict:
    """Medians of a configuration's runs, and of its per-round ratios to the off runs."""
    pairs = list(zip(runs, off, strict=True))
    middle = sorted(runs, key=lambda r: r["jobs_per_s"])[len(runs) // 2]
    found = {**middle, "name": name, "rounds": [r["jobs_per_s"] for r in runs],
             "jobs_ratio": statistics.median(r["jobs_per_s"] / max(o["jobs_per_s"], 1e-9) for r, o in pairs),
             "cpu_ms_per_job": statistics.median(r["cpu_ms_per_job"] for r in runs),
             "capacity_ratio": statistics.median(o["cpu_ms_per_job"] / r["cpu_ms_per_job"] for r, o in pairs),
             "otlp_requests": sink.requests, "otlp_kib": round(sink.bytes / 1024, 1)}
    log(f"{name}: median {found['jobs_per_s']:.1f} jobs/s ({found['jobs_ratio']:.3f}x), "
        f"{found['cpu_ms_per_job']:.2f} CPU ms/job ({found['capacity_ratio']:.3f}x), {sink.requests} OTLP requests")
    return found


def render(rows: list[dict], command: str) -> str:
    """The section: one row per configuration, and whether the 0.01 goal is met."""
    lines = [START, "## Tracing overhead", "",
             f"Produced by `{command}` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, {os.cpu_count()} CPUs): "
             f"digits, one instance per job, {CONCURRENCY} jobs in flight through nginx; the three stacks run side by "
             f"side and are loaded in turn for {len(rows[0]['rounds'])} rounds. *CPU ms/job* is the CPU time every "
             "process of the stack spent per finished job; *capacity* is off's CPU per job over the row's (the jobs/s "
             "a CPU-bound machine keeps), *jobs/s vs off* the measured ratio; both are medians of per-round ratios. "
             "Traced rows export their sampled spans over OTLP/HTTP to a sink on 127.0.0.1 "
             "(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_SAMPLER=parentbased_traceidratio` at the ratio named); "
             "the off row sets no `OTEL_*` variable.", "",
             "| tracing | CPU ms/job | capacity vs off | jobs/s | jobs/s vs off | jobs/s per round | p50 ms | p99 ms "
             "| errors | OTLP requests | KiB exported |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for found in rows:
        lines.append(f"| {found['name']} | {found['cpu_ms_per_job']:.2f} | {found['capacity_ratio']:.3f}x | "
                     f"{found['jobs_per_s']:.0f} | {found['jobs_ratio']:.3f}x | "
                     f"{', '.join(f'{rate:.0f}' for rate in found['rounds'])} | {found['p50_ms'] or 0:.1f} | "
                     f"{found['p99_ms'] or 0:.1f} | {found['errors']} | {found['otlp_requests']} | {found['otlp_kib']:.0f} |")
    low = next(r for r in rows if r["name"] == "on, sampling 0.01")
    lines += ["", f"Goal: at sampling 0.01 tracing costs at most 5% of jobs/s: capacity {low['capacity_ratio']:.3f}x "
              f"of off ({'met' if low['capacity_ratio'] >= GOAL else 'not met'}); measured jobs/s "
              f"{low['jobs_ratio']:.3f}x.", END]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="runs of each configuration, interleaved")
    args = parser.parse_args()
    command = f".venv/bin/python -m bench.tracing --duration {args.duration:g} --rounds {args.rounds}"
    WORK.mkdir(parents=True, exist_ok=True)
    payload = WORK / "tracing-digit.json"
    from sklearn.datasets import load_digits

    payload.write_bytes(orjson.dumps({"instances": load_digits().images[:1].astype(int).tolist()}))
    rows = measure(payload, args.duration, max(1, args.rounds))
    (WORK / "tracing.json").write_text(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    section = render(rows, command)
    sections.replace(ROOT / "bench" / "RESULTS.md", section, START, END)
    print(section)
    print(f"wrote the tracing section into bench/RESULTS.md (command: {command})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
