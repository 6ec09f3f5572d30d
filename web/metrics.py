"""Prometheus exposition built from counters kept in Redis.

Web and workers run in many processes, so counts live in Redis (written atomically with
each job transition) and every web process renders the same numbers.
"""
from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from shared import backlog as backlogs
from shared import keys, throughput
from shared.jobs import LATENCY_BUCKETS_S
from shared.keys import AUTOSCALER_DESIRED, BATCH_SIZE_BUCKETS
from shared.signatures import ModelCatalog
from web import stats


class RedisMetricsCollector:
    """A prometheus_client collector that reads inferq's counters from Redis on scrape."""

    def __init__(self, redis):
        self.redis = redis

    def describe(self):
        """Nothing to pre-declare; families are built on each scrape."""
        return []

    def collect(self):
        """Yield every metric family: job counts and latency, model versions, then the backlog."""
        catalog = ModelCatalog(self.redis)
        models = catalog.names()
        yield from self._jobs(models)
        yield from self._versions(catalog, models)
        yield from self._backlog(models)

    def _jobs(self, models: list[str]):
        """Submissions, outcomes, queue depth and latency; the per-model reads share one pipeline."""
        submitted = _decode_counts(self.redis.hgetall(keys.METRICS_SUBMITTED))
        finished = _decode_counts(self.redis.hgetall(keys.METRICS_FINISHED))
        known = sorted(set(models) | set(submitted))
        pipe = self.redis.pipeline(transaction=False)
        for name in known:
            pipe.hgetall(keys.latency_histogram(name))
        replies = pipe.execute()
        latency = HistogramMetricFamily("inferq_job_latency_seconds",
                                        "Seconds from submit to a terminal state.", labels=["model"])
        for index, name in enumerate(known):
            buckets, total = _cumulative_buckets(_decode_counts(replies[index]))
            latency.add_metric([name], buckets, total)
        yield _counter("inferq_jobs_submitted", "Jobs accepted.", ["model"],
                       {(m,): n for m, n in submitted.items()})
        yield _counter("inferq_jobs_finished", "Jobs that reached a terminal state.",
                       ["model", "status"],
                       {tuple(label.split("|", 1)): n for label, n in finished.items()})
        yield latency
        yield from self._lanes(known)

    def _lanes(self, models: list[str]):
        """Per model and lane: jobs waiting, the oldest one's wait, and the submit-to-start histogram."""
        now = time.time()
        depth = GaugeMetricFamily("inferq_queue_depth", "Jobs waiting to be claimed, per priority lane "
                                  "('requeued': a dead worker's claims, taken first).", labels=["model", "lane"])
        oldest = GaugeMetricFamily("inferq_queue_oldest_age_seconds", "How long the oldest job waiting in a "
                                   "lane has waited.", labels=["model", "lane"])
        waits = HistogramMetricFamily("inferq_queue_wait_seconds", "Seconds from submit to first start.",
                                      labels=["model", "lane"])
        series = _split_series(_decode_counts(self.redis.hgetall(keys.QUEUE_WAIT_HISTOGRAM)))
        for name in models:
            for lane, count in backlogs.lane_depths(self.redis, name).items():
                depth.add_metric([name, lane.value], count)
            depth.add_metric([name, "requeued"], self.redis.llen(keys.queue(name)))
            for lane, age in backlogs.lane_oldest_ages(self.redis, name, now).items():
                oldest.add_metric([name, lane.value], age)
                if (name, lane.value) in series:
                    buckets, total = _cumulative_buckets(series[(name, lane.value)])
                    waits.add_metric([name, lane.value], buckets, total)
        yield depth
        yield oldest
        yield waits

    def _versions(self, catalog: ModelCatalog, models: list[str]):
        """Loaded versions, live workers, pending jobs per version and each version's state."""
        models_gauge = GaugeMetricFamily("inferq_model_versions", "Model versions loaded.",
                                         labels=["model"])
        workers = GaugeMetricFamily("inferq_workers", "Inference workers with a recent heartbeat.",
                                    labels=["model"])
        pending = GaugeMetricFamily("inferq_jobs_pending", "Jobs routed to a model version that have "
                                    "not ended (queued, claimed or running).", labels=["model", "version"])
        states = GaugeMetricFamily("inferq_model_version_state", "1 for each model version's current state.",
                                   labels=["model", "version", "state"])
        for name in models:
            models_gauge.add_metric([name], self.redis.hlen(keys.model(name)))
            workers.add_metric([name], catalog.live_workers(name))
            for version, count in sorted(catalog.pending(name).items()):
                pending.add_metric([name, str(version)], max(0, count))
            for version, record in sorted(catalog.states(name).items()):
                states.add_metric([name, str(version), record["state"]], 1)
        yield models_gauge
        yield workers
        yield pending
        yield states

    def _backlog(self, models: list[str]):
        """The figures autoscalers scale on (shared.backlog), and what the local one decided."""
        now = time.time()
        backlog = GaugeMetricFamily("inferq_backlog", "Jobs routed to a model and not ended: queued, "
                                    "claimed by a worker or running.", labels=["model"])
        oldest = GaugeMetricFamily("inferq_oldest_queued_age_seconds",
                                   "How long the oldest job still in the model's queue has waited.", labels=["model"])
        rate = GaugeMetricFamily("inferq_throughput_jobs_per_second",
                                 "Jobs ended per second over the last 30-40 s.", labels=["model"])
        for name in models:
            backlog.add_metric([name], backlogs.backlog(self.redis, name))
            oldest.add_metric([name], backlogs.oldest_queued_age_s(self.redis, name, now))
            rate.add_metric([name], throughput.jobs_per_second(self.redis, name, now))
        desired = GaugeMetricFamily("inferq_autoscaler_desired_workers",
                                    "Worker processes the local autoscaler last decided on.", labels=["program"])
        for program, count in sorted(self.redis.hgetall(AUTOSCALER_DESIRED).items()):
            desired.add_metric([program.decode()], int(count))
        yield backlog
        yield oldest
        yield rate
        yield desired
        sizes = HistogramMetricFamily("inferq_batch_size", "Instances per forward pass.", labels=["model"])
        for name in models:
            buckets, total = _cumulative_buckets(_decode_counts(self.redis.hgetall(keys.batch_size_histogram(name))),
                                                 BATCH_SIZE_BUCKETS)
            sizes.add_metric([name], buckets, total)
        yield sizes
        recent = GaugeMetricFamily("inferq_recent_latency_ms", "Latency parts over the model's latest "
                                   "500 finished jobs: queue wait, batch wait, inference, total.",
                                   labels=["model", "part", "quantile"])
        for name in models:
            for part, quantiles in stats.latency(self.redis, name).items():
                for label, value in quantiles.items():
                    if value is not None:
                        recent.add_metric([name, part.removesuffix("_ms"), f"0.{label[1:]}"], value)
        yield recent
        yield from self._webhooks()

    def _webhooks(self):
        outcomes = _decode_counts(self.redis.hgetall(keys.METRICS_WEBHOOKS))
        yield _counter("inferq_webhook_deliveries", "Webhook delivery attempts by outcome.", ["outcome"],
                       {(name,): n for name, n in outcomes.items()})
        dead = GaugeMetricFamily("inferq_webhooks_dead", "Deliveries that ran out of retries (kept list).")
        dead.add_metric([], self.redis.llen(keys.DEAD_WEBHOOKS))
        yield dead
        scheduled = GaugeMetricFamily("inferq_webhook_retries_scheduled", "Deliveries waiting to be retried.")
        scheduled.add_metric([], self.redis.zcard(keys.WEBHOOK_SCHEDULE))
        yield scheduled
        buckets, total = _cumulative_buckets(_decode_counts(self.redis.hgetall(keys.WEBHOOK_LATENCY)))
        latency = HistogramMetricFamily("inferq_webhook_attempt_seconds", "Duration of delivery attempts.")
        latency.add_metric([], buckets, total)
        yield latency


def render(redis) -> bytes:
    """The Prometheus text exposition of every inferq metric."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisMetricsCollector(redis))
    return generate_latest(registry)


def _counter(name, documentation, labels, values):
    family = CounterMetricFamily(name, documentation, labels=labels)
    for label_values, count in sorted(values.items()):
        family.add_metric(list(label_values), count)
    return family


def _split_series(counts: dict[str, float]) -> dict[tuple[str, str], dict[str, float]]:
    """``model|lane|bucket`` counts as one bucket dict per (model, lane)."""
    series: dict[tuple[str, str], dict[str, float]] = {}
    for label, count in counts.items():
        model, lane, bucket = label.rsplit("|", 2)
        series.setdefault((model, lane), {})[bucket] = count
    return series


def _decode_counts(raw: dict) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in raw.items()}


def _cumulative_buckets(counts: dict[str, float], bounds=LATENCY_BUCKETS_S):
    running = 0.0
    buckets = []
    for bound in bounds:
        running += counts.get(str(bound) if isinstance(bound, int) else repr(bound), 0.0)
        buckets.append((str(float(bound)) if isinstance(bound, int) else repr(bound), running))
    running += counts.get("+Inf", 0.0)
    buckets.append(("+Inf", running))
    return buckets, counts.get("sum", 0.0)
