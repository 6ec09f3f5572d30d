"""One frozen settings object, read from ``INFERQ_*`` environment variables.

Every field has a documented default; the README's configuration table lists them all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Mapping

PREFIX = "INFERQ_"


@dataclass(frozen=True)
class Settings:
    """Service configuration. Field ``foo_bar`` is read from ``INFERQ_FOO_BAR``."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    """Redis used as the Celery broker and as the job store."""
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
    visibility_timeout_s: int = 3600
    """Seconds before Redis redelivers an unacknowledged task; longer than the slowest job."""
    worker_mode: str = "batch"
    """``batch``: inferq's batching consumer; ``prefork``: stock Celery, one job per task."""
    worker_id: str = ""
    """Stable identity of a worker (its in-flight list survives restarts); default model@host."""
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
    web_threads: int = 64
    """Threads per gunicorn worker; long-polls hold one each."""
    web_bind: str = "127.0.0.1:8001"
    """Where gunicorn listens behind nginx."""
    local_redis_port: int = 6390
    """Port of the Redis that ``make run`` starts when ``INFERQ_REDIS_URL`` is unset."""
    redis_appendfsync: str = "always"
    """AOF fsync policy of that Redis: ``always`` loses no acknowledged job, ``everysec`` up to 1 s."""
    log_level: str = "info"
    """Log level for web and workers."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
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
    def model_names(self) -> list[str]:
        """Models named in ``worker_models``, empty when the worker serves all."""
        return [name.strip() for name in self.worker_models.split(",") if name.strip()]


BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
            "0": False, "false": False, "no": False, "off": False}


def _convert(name: str, raw: str, kind: type):
    if kind is bool:
        if raw.strip().lower() not in BOOLEANS:
            raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a boolean (true/false)")
        return BOOLEANS[raw.strip().lower()]
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
    if kind in (int, float) and value < 0:
        raise ValueError(f"{PREFIX}{name.upper()} must not be negative, got {raw!r}")
    return value
