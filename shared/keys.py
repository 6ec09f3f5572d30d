"""Every Redis key inferq uses, in one place (the README documents this schema).

All keys share the ``inferq:`` prefix so an operator can find, count or delete them.
"""
from __future__ import annotations

PREFIX = "inferq"

JOB_FINISHED_CHANNEL = f"{PREFIX}:events:job-finished"
"""Pub/sub channel announcing each job that ended: ``<id>\n<its JSON as GET shows it>`` (the id alone over 64 KiB)."""

MODELS_SET = f"{PREFIX}:models"
"""Set of model names some worker has loaded and published."""

METRICS_SUBMITTED = f"{PREFIX}:metrics:submitted"
"""Hash: model -> jobs submitted."""

METRICS_FINISHED = f"{PREFIX}:metrics:finished"
"""Hash: ``model|status`` -> jobs that ended in that status."""


def job(job_id: str) -> str:
    """Hash holding one job record; expires after ``INFERQ_JOB_TTL_S``."""
    return f"{PREFIX}:job:{job_id}"


def model(name: str) -> str:
    """Hash: version -> JSON signature published by the worker that loaded it."""
    return f"{PREFIX}:model:{name}"


def model_states(name: str) -> str:
    """Hash: version -> JSON ``{state, reason, at}``: loading, ready, failed or retired."""
    return f"{PREFIX}:model-state:{name}"


def pending(model_name: str) -> str:
    """Hash: version -> jobs routed to it that have not ended (queued, claimed or running).

    Raised in the submit script and lowered in the Lua step that ends a job, so it is exact;
    a worker unloads a retired version only once its count is zero.
    """
    return f"{PREFIX}:pending:{model_name}"


def throughput(model_name: str, bucket: int) -> str:
    """Counter of jobs that ended in one 10-second bucket (expires after two minutes)."""
    return f"{PREFIX}:metrics:throughput:{model_name}:{bucket}"


def rate_limit(owner: str) -> str:
    """Token bucket (hash: tokens, at) limiting one API key's submissions."""
    return f"{PREFIX}:ratelimit:{owner or '-'}"


RECENT_FAILURES = f"{PREFIX}:stats:recent-failures"
"""List of the latest failed jobs (JSON: id, model, error, at), newest first, capped at 20."""

STATS_HISTORY = f"{PREFIX}:stats:history"
"""List of dashboard snapshots (JSON), newest first, capped at 15 minutes' worth."""


def recent_timings(model_name: str) -> str:
    """List of the latest finished jobs' timings (JSON), newest first, capped."""
    return f"{PREFIX}:stats:timings:{model_name}"


AUTOSCALER_DESIRED = f"{PREFIX}:autoscaler:desired"
"""Hash: worker program -> the worker count the local autoscaler last decided."""

MODELS_RELOAD_CHANNEL = f"{PREFIX}:events:models-reload"
"""Pub/sub channel asking every worker to rescan the model repository now."""


def latency_histogram(model_name: str) -> str:
    """Hash of job latency bucket counts (plus ``sum`` and ``count``) for one model."""
    return f"{PREFIX}:metrics:latency:{model_name}"


def queue(model_name: str) -> str:
    """Celery queue (a Redis list) feeding one model's workers."""
    return f"{PREFIX}.{model_name}"


def processing(worker_id: str, model_name: str) -> str:
    """List of messages a worker has claimed and not yet finished (its in-flight jobs)."""
    return f"{PREFIX}:processing:{model_name}:{worker_id}"


def workers(model_name: str) -> str:
    """Sorted set: worker id -> time of its last heartbeat, for one model."""
    return f"{PREFIX}:workers:{model_name}"


BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
"""Upper bounds of the forward-pass size histogram's buckets."""


def batch_size_histogram(model_name: str) -> str:
    """Hash of forward-pass size bucket counts (plus ``sum`` and ``count``) for one model."""
    return f"{PREFIX}:metrics:batch-size:{model_name}"


WEBHOOK_SCHEDULE = f"{PREFIX}:webhooks:scheduled"
"""Sorted set: ``job|event|attempt`` -> time that retry is due (durable retries)."""

METRICS_WEBHOOKS = f"{PREFIX}:metrics:webhooks"
"""Hash: delivery outcome -> count of attempts that ended so."""

WEBHOOK_LATENCY = f"{PREFIX}:metrics:webhook-latency"
"""Hash of delivery-attempt duration bucket counts (plus ``sum`` and ``count``)."""

WEBHOOK_OUTSTANDING = f"{PREFIX}:webhooks:outstanding"
"""Sorted set: ``job|event`` -> when its delivery was last queued, attempted, or is due again.

Added in the same step that queues a delivery, refreshed when an attempt starts, and removed
when the delivery reaches a final outcome. Once the webhook queue has drained, an entry left
behind for ``INFERQ_WEBHOOK_LOST_AFTER_S`` lost its message (a broker connection that died
between pop and acknowledgement) and is queued again."""

DEAD_WEBHOOKS = f"{PREFIX}:webhooks:dead"
"""List of deliveries that exhausted their retries (newest first, bounded)."""


def deliveries(job_id: str) -> str:
    """List of one job's webhook delivery attempts (JSON, oldest first)."""
    return f"{PREFIX}:job:{job_id}:deliveries"


def webhook_open(job_id: str, event: str) -> str:
    """Set while an event's delivery is pending, so ``completed`` waits for ``started``."""
    return f"{PREFIX}:job:{job_id}:webhook-open:{event}"


def webhook_event(job_id: str, event: str) -> str:
    """Hash: the job as it was when ``event`` happened, so every attempt sends the same body.

    Written for ``started`` (the job moves on); ``completed`` reads the ended job itself,
    which no longer changes."""
    return f"{PREFIX}:job:{job_id}:event:{event}"


def idempotency(key: str) -> str:
    """String: the job an ``Idempotency-Key`` created, and a hash of that request."""
    return f"{PREFIX}:idempotency:{key}"


def lane(model_name: str, priority: str) -> str:
    """Sorted set: job id -> fair-share tag, the jobs of one model and priority waiting to be claimed."""
    return f"{PREFIX}:lane:{model_name}:{priority}"


def lane_arrivals(model_name: str, priority: str) -> str:
    """Sorted set: job id -> submit time, the same jobs as ``lane`` ordered by age (the oldest-job gauge)."""
    return f"{PREFIX}:lane-arrivals:{model_name}:{priority}"


def lane_messages(model_name: str) -> str:
    """Hash: job id -> its Celery message, for jobs still in one of the model's lanes."""
    return f"{PREFIX}:lane-messages:{model_name}"


def lane_owners(model_name: str, priority: str) -> str:
    """Hash: owner -> the fair-share tag of that owner's newest job in one lane."""
    return f"{PREFIX}:lane-owners:{model_name}:{priority}"


def lane_clocks(model_name: str) -> str:
    """Hash: priority -> tag of the job last claimed from that lane (its virtual clock)."""
    return f"{PREFIX}:lane-clocks:{model_name}"


def lane_turns(model_name: str) -> str:
    """Counter of batches claimed for one model: every Nth serves a lower lane first."""
    return f"{PREFIX}:lane-turns:{model_name}"


def doorbell(model_name: str) -> str:
    """List of tokens, one per claimable job (capped): what an idle worker of the model blocks on."""
    return f"{PREFIX}:doorbell:{model_name}"


def lane_held(model_name: str) -> str:
    """Sorted set: job id -> fair-share tag, stored jobs not yet in their lane: their write awaits
    the replicas' confirmation (``INFERQ_REDIS_MIN_REPLICAS``), and no worker may claim them."""
    return f"{PREFIX}:lane-held:{model_name}"


QUEUE_HELD = f"{PREFIX}:queue-held"
"""Sorted set: job id -> when it was held; the sweep releases any its web process never settled."""


QUEUE_DEADLINES = f"{PREFIX}:queue-deadlines"
"""Sorted set: job id -> the time by which it must have started (jobs submitted with ``max_queue_s``)."""


QUEUE_WAIT_HISTOGRAM = f"{PREFIX}:metrics:queue-wait"
"""Hash of submit-to-first-start bucket counts: ``<model>|<lane>|<bucket>`` (and ``|sum``, ``|count``)."""


def busy(model_name: str, bucket: int) -> str:
    """Float counter of worker-seconds spent running one model's batches in one 10-second bucket."""
    return f"{PREFIX}:metrics:busy:{model_name}:{bucket}"
