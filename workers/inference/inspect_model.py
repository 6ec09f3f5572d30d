"""Check a model before serving it: ``python -m workers.inference.inspect_model models/NAME/VERSION``.

Loads it exactly as a worker would (any served format, compiled, warmed up, ``inferq.yaml``
applied) and prints the signature and config the API will enforce. Exits 1, with the reason,
when a worker would refuse it.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    version_dir = Path(argv[0])
    try:
        from shared.settings import Settings
        from workers.inference import model_formats
        from workers.inference.compiled import CompiledModel
        from workers.inference.model_config import load_config

        config = load_config(version_dir, Settings.from_env())
        compiled = CompiledModel(version_dir.parent.name, int(version_dir.name),
                                 model_formats.load(version_dir), config)
        compiled.warm_up(config.batching.max_batch_size)
    except Exception as exc:
        print(f"refused: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(compiled.signature), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
