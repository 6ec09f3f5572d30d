"""Turns one benchmark run into bench/RESULTS.md (tables, goals and ratios) and results.png."""
from __future__ import annotations

import time
from pathlib import Path

JPEG, NPY, JSON = "JPEG upload", ".npy", "JSON"
"""The bodies a run can carry (``bench.loadgen.BODY_NAMES``)."""


def matches(run, system, model, instances, body, flow) -> bool:
    """The run is of ``system`` on ``model``; ``body`` and ``flow`` are checked when given."""
    return (run["system"], run["model"], run["instances_per_job"]) == (system, model, instances) \
        and body in (None, run.get("body", JSON)) and flow in (None, run["flow"])


def find(runs, system, model, concurrency, instances=1, body=None, flow=None):
    for run in runs:
        if run["concurrency"] == concurrency and matches(run, system, model, instances, body, flow):
            return run
    return None


def best(runs, system, model, instances=1, body=None, flow=None):
    candidates = [r for r in runs if matches(r, system, model, instances, body, flow)]
    return max(candidates, key=lambda r: r["jobs_per_s"]) if candidates else None


def ratio(a, b):
    return a / b if a is not None and b else None


def goals(raw, runs, memory) -> list[tuple[str, str, str, bool | None]]:
    """(goal, measured, target, met) rows."""
    return [*throughput_goals(raw, runs), *latency_goals(raw, runs), *scaling_goals(runs), memory_goal(memory)]


def throughput_goals(raw, runs) -> list[tuple[str, str, str, bool | None]]:
    """Best throughput against the raw model limit, the peers on the same bytes, and the absolute targets."""
    rows = []
    mob_best = best(runs, "inferq", "mobilenet", body=NPY)
    raw_mob = raw["mobilenet"]["best_samples_per_s"]
    r = ratio(mob_best and mob_best["jobs_per_s"], raw_mob)
    rows.append(("MobileNetV2 end to end (.npy) vs raw best-batch tf.function",
                 f"{mob_best['jobs_per_s']:.1f} vs {raw_mob:.1f} jobs/s = {r:.2f}x" if r else "n/a", ">= 0.95x",
                 r is not None and r >= 0.95))
    rows += peer_goals(runs)
    at32 = find(runs, "inferq", "digits", 32, flow="inferq")
    rows.append(("digits, 1 instance per job, 32 in flight, submit with `Prefer: wait` plus long-poll",
                 f"{at32['jobs_per_s']:.0f} jobs/s", ">= 1000 jobs/s", at32["jobs_per_s"] >= 1000))
    get32 = find(runs, "inferq", "digits", 32, flow="inferq-get")
    if get32:
        rows.append(("digits, 1 instance per job, 32 in flight, submit (202) then `GET ?wait=`",
                     f"{get32['jobs_per_s']:.0f} jobs/s ({ratio(get32['jobs_per_s'], at32['jobs_per_s']):.2f}x "
                     "`Prefer: wait`)", ">= 1000 jobs/s", get32["jobs_per_s"] >= 1000))
    hundred = best(runs, "inferq", "digits", 100)
    if hundred:
        rate = hundred["jobs_per_s"] * 100
        rows.append(("digits, 100 instances per job", f"{rate:.0f} instances/s", ">= 20000 instances/s",
                     rate >= 20000))
    return rows


PEER_NAMES = {"bentoml": "BentoML (adaptive batching)", "ray": "Ray Serve (`@serve.batch`)"}


def peer_goals(runs) -> list[tuple[str, str, str, bool | None]]:
    """inferq's best over each synchronous peer's best, on the same bytes: digits JSON, MobileNetV2 JPEG."""
    rows = []
    for peer, name in PEER_NAMES.items():
        for model, body in (("digits", JSON), ("mobilenet", JPEG)):
            ours, theirs = best(runs, "inferq", model, body=body), best(runs, peer, model, body=body)
            if ours and theirs:
                r = ratio(ours["jobs_per_s"], theirs["jobs_per_s"])
                measured = f"{ours['jobs_per_s']:.0f} vs {theirs['jobs_per_s']:.0f} jobs/s = {r:.2f}x" if r else "n/a"
                rows.append((f"{model} vs {name}, the same {body} body, best of each", measured,
                             ">= 1x", r is not None and r >= 1))
    return rows


def latency_goals(raw, runs) -> list[tuple[str, str, str, bool | None]]:
    """Latency at one job in flight: p50 against its bound (the model's own time for MobileNetV2), p99/p50."""
    one = find(runs, "inferq", "digits", 1)
    rows = [("digits latency at 1 in flight, p50", f"{one['p50_ms']:.1f} ms", "<= 10 ms", one["p50_ms"] <= 10),
            ("digits latency at 1 in flight, p99/p50", f"{one['p99_ms'] / one['p50_ms']:.2f}x", "<= 2x",
             one["p99_ms"] <= 2 * one["p50_ms"])]
    mob_one = find(runs, "inferq", "mobilenet", 1, body=NPY)
    model_ms = 1000 / raw["mobilenet"]["compiled"].get("1", raw["mobilenet"]["compiled"].get(1))
    rows.append(("MobileNetV2 latency at 1 in flight, p50", f"{mob_one['p50_ms']:.1f} ms (model {model_ms:.1f} ms)",
                 f"<= {model_ms + 10:.1f} ms", mob_one["p50_ms"] <= model_ms + 10))
    rows.append(("MobileNetV2 latency at 1 in flight, p99/p50", f"{mob_one['p99_ms'] / mob_one['p50_ms']:.2f}x",
                 "<= 2x", mob_one["p99_ms"] <= 2 * mob_one["p50_ms"]))
    return rows


def scaling_goals(runs) -> list[tuple[str, str, str, bool | None]]:
    """Throughput held from 8 to 64 in flight, and the lead over the tutorial Celery peer at 32."""
    rows = []
    for model in ("digits", "mobilenet"):
        at8, at64 = find(runs, "inferq", model, 8, flow="inferq"), find(runs, "inferq", model, 64, flow="inferq")
        rows.append((f"{model}: throughput does not fall from 8 to 64 in flight",
                     f"{at8['jobs_per_s']:.1f} -> {at64['jobs_per_s']:.1f} jobs/s", ">= 0.95x",
                     at64["jobs_per_s"] >= 0.95 * at8["jobs_per_s"]))
    for model, target in (("mobilenet", 10), ("digits", 50)):
        body = NPY if model == "mobilenet" else JSON
        ours, theirs = find(runs, "inferq", model, 32, body=body, flow="inferq"), find(runs, "tutorial", model, 32)
        if ours and theirs:
            r = ratio(ours["jobs_per_s"], theirs["jobs_per_s"])
            rows.append((f"{model} vs tutorial Celery at 32 in flight", f"{r:.1f}x" if r else "n/a",
                         f">= {target}x", r is not None and r >= target))
    return rows


def memory_goal(memory) -> tuple[str, str, str, bool | None]:
    """The serving worker's resident memory against the bare model process."""
    r = ratio(memory["worker_rss_mib"], memory["bare_rss_mib"])
    return (f"MobileNetV2 worker RSS vs bare process (batch {memory['batch']})",
            f"{memory['worker_rss_mib']:.0f} / {memory['bare_rss_mib']:.0f} MiB = {r:.2f}x", "<= 1.3x",
            r <= 1.3)


def plot(path: Path, runs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = sorted({(r["system"], r.get("body", JSON)) for r in runs if r["instances_per_job"] == 1})
    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    for row, model in enumerate(("digits", "mobilenet")):
        for system, body in series:
            points = sorted((r["concurrency"], r["jobs_per_s"], r["p99_ms"] or 0) for r in runs
                            if (r["system"], r.get("body", JSON), r["model"]) == (system, body, model)
                            and r["instances_per_job"] == 1 and r["flow"] != "inferq-get")
            if len(points) < 2:
                continue
            xs = [p[0] for p in points]
            label = f"{system} ({body})" if model == "mobilenet" else system
            axes[row][0].plot(xs, [p[1] for p in points], marker="o", label=label)
            axes[row][1].plot(xs, [p[2] for p in points], marker="o", label=label)
        axes[row][0].set_title(f"{model}: throughput")
        axes[row][0].set_ylabel("jobs/s")
        axes[row][1].set_title(f"{model}: p99 latency")
        axes[row][1].set_ylabel("ms")
        axes[row][1].set_yscale("log")
        for axis in axes[row]:
            axis.set_xscale("log", base=2)
            axis.set_xlabel("jobs in flight")
            axis.legend()
            axis.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def header(machine: str, command: str) -> list[str]:
    """Where the figures come from and how to read them, then the goals table's heading."""
    return [
        "# Benchmark results", "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}, on {machine}.",
        "The load generator, nginx, gunicorn, Redis and the workers share these cores. Throughput is the",
        "median of one-second windows; latency is per job, submit to result. This machine is shared and",
        "noisy (absolute figures drift by about 15% between runs): read the ratios.", "",
        "## Goals", "", "| goal | measured | target | met |", "|---|---|---|---|",
    ]


def raw_table(raw) -> list[str]:
    """The in-process limit of each model, by batch size."""
    lines = ["", "## Raw model limits (in-process, no queue)", "",
             "| model | model.predict, batch 1 | compiled tf.function by batch (samples/s) | best |",
             "|---|---|---|---|"]
    for name, found in raw.items():
        by_batch = ", ".join(f"{b}: {v:.0f}" for b, v in found["compiled"].items())
        lines.append(f"| {name} | {found['predict_batch1']:.1f}/s | {by_batch} | "
                     f"{found['best_samples_per_s']:.0f}/s at batch {found['best_batch']} |")
    return lines


REQUESTS = {"inferq": "POST, `Prefer: wait`", "inferq-get": "POST, then `GET ?wait=`", "sync": "one POST",
            "poll": "POST, then GET every 50 ms"}
"""How each load generator flow asks for a job (``bench.loadgen.FLOWS``)."""


def end_to_end_table(runs) -> list[str]:
    """One row per measured point, every system."""
    lines = ["", "## End to end", "",
             "| system | model | body | requests | instances/job | in flight | jobs/s | instances/s | p50 ms | p99 ms "
             "| errors |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['system']} | {r['model']} | {r.get('body', JSON)} | {REQUESTS[r['flow']]} | "
                     f"{r['instances_per_job']} | {r['concurrency']} | "
                     f"{r['jobs_per_s']:.1f} | {r['jobs_per_s'] * r['instances_per_job']:.0f} | "
                     f"{(r['p50_ms'] or 0):.1f} | {(r['p99_ms'] or 0):.1f} | {r['errors']} |")
    return lines


def publish_and_capacity(publish, capacity) -> list[str]:
    """The figure, the cost of publishing a job and the long-poll capacity."""
    return ["", "![throughput and p99 against jobs in flight](results.png)", "",
            "## Publishing a job (median microseconds per job, Redis with appendfsync always)", "",
            "| path | µs per job |", "|---|---|",
            f"| Celery `send_task` alone (no job record) | {publish['send_task_only_us']:.0f} |",
            f"| job record, then `send_task` (two steps) | {publish['record_then_send_task_us']:.0f} |",
            f"| inferq: record and message in one script | {publish['one_script_submit_us']:.0f} |", "",
            "## Long-poll capacity (gunicorn gevent workers)", "",
            f"{capacity['clients']} clients long-polled {capacity['clients']} queued jobs at once "
            f"({capacity['parked_while_waiting']} were still parked after 3 s); once the worker started, "
            f"{capacity['succeeded']} answered `succeeded`, the last "
            f"{capacity['seconds_after_worker_start']} s after the start command (which includes "
            "loading TensorFlow and the model).", ""]


def write(bench_dir: Path, raw, runs, memory, publish, capacity, machine: str, command: str) -> None:
    lines = header(machine, command)
    for goal, measured, target, met in goals(raw, runs, memory):
        lines.append(f"| {goal} | {measured} | {target} | {'yes' if met else 'no'} |")
    lines += raw_table(raw) + end_to_end_table(runs) + publish_and_capacity(publish, capacity)
    notes = bench_dir / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text()]
    from bench import autoscale, cost, paired, priority, protocols, reliability, replication, tracing

    # Sections other commands write (the fault suite; the autoscaling run, which follows).
    results_md = bench_dir / "RESULTS.md"
    kept = (paired.kept_section(results_md) + reliability.kept_section(results_md) + autoscale.kept_section(results_md)
            + protocols.kept_section(results_md) + tracing.kept_section(results_md) + cost.kept_section(results_md)
            + priority.kept_section(results_md) + replication.kept_section(results_md))
    (bench_dir / "RESULTS.md").write_text("\n".join(lines) + "\n" + kept)
    plot(bench_dir / "results.png", runs)
