"""The model repository on disk: ``<models_dir>/<name>/<version>/model.keras``.

Each worker process loads its models once, warms them up, and publishes their signatures
so web can list them and validate inputs without TensorFlow.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from shared.errors import InferqError
from shared.settings import Settings
from shared.signatures import ModelCatalog
from workers.batching import BatchPolicy
from workers.model_config import ModelConfig, load_config

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
VERSION_DIR = re.compile(r"^[1-9][0-9]*$")


class ModelNotLoaded(InferqError):
    """A job asked for a model version this worker does not hold."""


def discover(models_dir: str | Path, names: list[str] | None = None) -> dict[str, list[tuple[int, Path]]]:
    """Every ``name -> [(version, path)]`` found on disk (versions ascending)."""
    root = Path(models_dir)
    found: dict[str, list[tuple[int, Path]]] = {}
    if not root.is_dir():
        return found
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if names and model_dir.name not in names:
            continue
        versions = sorted(
            (int(v.name), v / MODEL_FILE)
            for v in model_dir.iterdir()
            if v.is_dir() and VERSION_DIR.match(v.name) and (v / MODEL_FILE).is_file()
        )
        if versions:
            found[model_dir.name] = versions
    return found


class ModelRegistry:
    """The compiled models one worker process holds, keyed by name and version."""

    def __init__(self):
        self._models = {}
        self._configs: dict[tuple[str, int], ModelConfig] = {}

    def load(self, models_dir: str | Path, names: list[str] | None, catalog: ModelCatalog,
             settings: Settings) -> None:
        """Load, warm up and publish every version found; a broken one is logged and skipped."""
        import keras

        from workers.compiled import CompiledModel

        for name, versions in discover(models_dir, names).items():
            for version, path in versions:
                try:
                    config = load_config(path.parent, settings)
                    compiled = CompiledModel(name, version, keras.saving.load_model(path, compile=False))
                    compiled.warm_up(config.batching.max_batch_size)
                except Exception:
                    log.exception("could not load model %s version %s from %s", name, version, path)
                    continue
                self._models[(name, version)] = compiled
                self._configs[(name, version)] = config
                catalog.publish(compiled.signature)
                log.info("loaded model %s version %s", name, version)

    def get(self, name: str, version: int):
        """The compiled model, or ``ModelNotLoaded``."""
        try:
            return self._models[(name, version)]
        except KeyError:
            raise ModelNotLoaded(f"model {name} version {version} is not loaded by this worker") from None

    def batch_policy(self, name: str) -> BatchPolicy:
        """The batching policy of the newest loaded version of ``name``."""
        newest = max(version for model, version in self._configs if model == name)
        return self._configs[(name, newest)].batching

    def loaded(self) -> list[tuple[str, int]]:
        """``(name, version)`` of every model held."""
        return sorted(self._models)
