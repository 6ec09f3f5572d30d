"""Reading inferq's /metrics for ``inferq top``: per-model gauges, rates and percentiles."""
from __future__ import annotations

import re
import time
from collections import defaultdict

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> list[tuple[str, dict, float]]:
    """``(name, labels, value)`` for every sample line of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if match:
            labels = dict(LABEL.findall(match.group(2) or ""))
            samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate a quantile from cumulative ``(upper_bound, count)`` histogram buckets."""
    if not buckets or buckets[-1][1] == 0:
        return None
    target = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= target:
            if bound == float("inf"):
                return lower
            share = (target - below) / (count - below) if count > below else 0.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower


def model_summaries(text: str, previous: tuple[float, str] | None) -> list[dict]:
    """One row per model; throughput is the finished-job rate since ``previous``."""
    current = parse(text)
    rows: dict[str, dict] = defaultdict(lambda: {"queue_depth": 0.0, "workers": 0.0, "jobs_per_s": None})
    buckets: dict[str, list] = defaultdict(list)
    finished = defaultdict(float)
    for name, labels, value in current:
        model = labels.get("model")
        if model is None:
            continue
        if name == "inferq_queue_depth":
            rows[model]["queue_depth"] += value
        elif name == "inferq_workers":
            rows[model]["workers"] = value
        elif name == "inferq_jobs_finished_total":
            finished[model] += value
        elif name == "inferq_job_latency_seconds_bucket":
            buckets[model].append((float(labels["le"].replace("+Inf", "inf")), value))
    if previous is not None:
        then, old_text = previous
        elapsed = max(time.monotonic() - then, 1e-9)
        before = defaultdict(float)
        for name, labels, value in parse(old_text):
            if name == "inferq_jobs_finished_total" and "model" in labels:
                before[labels["model"]] += value
        for model in finished:
            rows[model]["jobs_per_s"] = (finished[model] - before[model]) / elapsed
    for model, found in buckets.items():
        ordered = sorted(found)
        for q in (0.5, 0.99):
            estimate = quantile(ordered, q)
            rows[model][f"p{int(q * 100)}_ms"] = None if estimate is None else estimate * 1000
    return [{"model": model, **values} for model, values in sorted(rows.items())]


def render_table(rows: list[dict]) -> str:
    """A fixed-width table of ``model_summaries`` rows."""
    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = [f"{'model':<16}{'queue':>8}{'workers':>9}{'jobs/s':>9}{'p50 ms':>9}{'p99 ms':>9}"]
    for row in rows:
        lines.append(f"{row['model']:<16}{cell(row['queue_depth'], '.0f'):>8}{cell(row['workers'], '.0f'):>9}"
                     f"{cell(row['jobs_per_s'], '.1f'):>9}{cell(row.get('p50_ms'), '.1f'):>9}"
                     f"{cell(row.get('p99_ms'), '.1f'):>9}")
    return "\n".join(lines)
