"""Start an inference worker for some models: ``python -m workers.inference [MODEL ...]``.

Consumes one queue per model (so a slow model cannot starve a fast one); with no names it
serves every model found in ``INFERQ_MODELS_DIR``.
"""
from __future__ import annotations

import dataclasses
import os
import sys

from shared import keys
from shared.settings import Settings, WorkerMode
from workers.inference import start_priority
from workers.inference.registry import discover
from workers.inference.runtime import worker_identity


def pool_arguments(settings: Settings, names: list[str]) -> list[str]:
    """Celery's pool and queue options for the worker mode."""
    if settings.worker_mode is WorkerMode.BATCH:
        # The batching step drains the model queues; Celery keeps a queue of its own.
        return ["--pool", "solo", "--queues", f"inferq.worker.{worker_identity(settings)}"]
    return ["--pool", "prefork", "--concurrency", str(settings.worker_concurrency),
            "--queues", ",".join(keys.queue(name) for name in names)]


def main(argv: list[str]) -> None:
    """Resolve the models, then hand over to Celery's worker with their queues."""
    settings = Settings.from_env()
    names = argv or settings.model_names or sorted(discover(settings.models_dir))
    if not names:
        sys.exit(f"no models found in {settings.models_dir!r}")
    settings = dataclasses.replace(settings, worker_models=",".join(names))
    if settings.worker_mode is WorkerMode.BATCH and start_priority.load_on_spare_cpu(settings, names):
        print("other workers are serving these models: loading on spare CPU (SCHED_IDLE) until warm", flush=True)
    from workers.inference.app import make_app

    make_app(settings).worker_main([
        "worker", *pool_arguments(settings, names),
        "--hostname", f"{'+'.join(names)}-{os.getpid()}@%h",
        "--loglevel", settings.log_level.upper(),
        "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ValueError as exc:  # a malformed INFERQ_* setting
        sys.exit(f"inference worker: {exc}")
