"""Start an inference worker for some models: ``python -m workers [MODEL ...]``.

Consumes one queue per model (so a slow model cannot starve a fast one); with no names it
serves every model found in ``INFERQ_MODELS_DIR``.
"""
from __future__ import annotations

import os
import socket
import sys

from shared import keys
from shared.settings import Settings
from workers import start_priority
from workers.registry import discover


def main(argv: list[str]) -> None:
    """Resolve the models, then hand over to Celery's worker with their queues."""
    settings = Settings.from_env()
    names = argv or settings.model_names or sorted(discover(settings.models_dir))
    if not names:
        sys.exit(f"no models found in {settings.models_dir!r}")
    os.environ["INFERQ_WORKER_MODELS"] = ",".join(names)
    if settings.worker_mode == "batch" and start_priority.load_on_spare_cpu(settings.redis_url, names):
        print("other workers are serving these models: loading on spare CPU (SCHED_IDLE) until warm", flush=True)
    from workers.celery_app import app

    if settings.worker_mode == "batch":
        # The batching step drains the model queues; Celery keeps a queue of its own.
        identity = settings.worker_id or socket.gethostname()
        pool = ["--pool", "solo", "--queues", f"inferq.worker.{identity}"]
    elif settings.worker_mode == "prefork":
        pool = ["--pool", "prefork", "--concurrency", str(settings.worker_concurrency),
                "--queues", ",".join(keys.queue(name) for name in names)]
    else:
        sys.exit(f"INFERQ_WORKER_MODE must be batch or prefork, not {settings.worker_mode!r}")
    app.worker_main([
        "worker", *pool,
        "--hostname", f"{'+'.join(names)}-{os.getpid()}@%h",
        "--loglevel", settings.log_level.upper(),
        "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    main(sys.argv[1:])
