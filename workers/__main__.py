"""Start an inference worker for some models: ``python -m workers [MODEL ...]``.

Consumes one queue per model (so a slow model cannot starve a fast one); with no names it
serves every model found in ``INFERQ_MODELS_DIR``.
"""
from __future__ import annotations

import os
import sys

from shared import keys
from shared.settings import Settings
from workers.registry import discover


def main(argv: list[str]) -> None:
    """Resolve the models, then hand over to Celery's worker with their queues."""
    settings = Settings.from_env()
    names = argv or settings.model_names or sorted(discover(settings.models_dir))
    if not names:
        sys.exit(f"no models found in {settings.models_dir!r}")
    os.environ["INFERQ_WORKER_MODELS"] = ",".join(names)
    from workers.celery_app import app

    app.worker_main([
        "worker",
        "--queues", ",".join(keys.queue(name) for name in names),
        "--hostname", f"{'+'.join(names)}-{os.getpid()}@%h",
        "--concurrency", str(settings.worker_concurrency),
        "--pool", "prefork",
        "--loglevel", settings.log_level.upper(),
        "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    main(sys.argv[1:])
