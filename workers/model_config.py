"""Per-model settings from an optional ``inferq.yaml`` beside ``model.keras``.

    description: Handwritten digits, 8x8, pixels 0..16
    batching:
      max_batch_size: 16    # most instances per forward pass
      max_delay_ms: 5       # wait for company (when adaptive is false)
      adaptive: true        # run at once when the queue is empty

Anything not given falls back to the ``INFERQ_*`` defaults.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from shared.settings import Settings
from workers.batching import BatchPolicy

CONFIG_FILE = "inferq.yaml"
BATCHING_KEYS = {"max_batch_size": int, "max_delay_ms": float, "adaptive": bool}


class InvalidModelConfig(ValueError):
    """``inferq.yaml`` is not valid; the model version is refused with this reason."""


@dataclass(frozen=True)
class ModelConfig:
    """What ``inferq.yaml`` says, with the service defaults filled in."""

    batching: BatchPolicy
    description: str = ""


def load_config(version_dir: Path, settings: Settings) -> ModelConfig:
    """Read ``version_dir/inferq.yaml`` if present; defaults otherwise."""
    values = {"max_batch_size": settings.max_batch_size, "max_delay_ms": settings.max_delay_ms,
              "adaptive": settings.batch_adaptive}
    path = Path(version_dir) / CONFIG_FILE
    description = ""
    if path.exists():
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InvalidModelConfig(f"{path}: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidModelConfig(f"{path}: expected a mapping at the top level")
        description = str(data.get("description", ""))
        batching = data.get("batching", {}) or {}
        if not isinstance(batching, dict):
            raise InvalidModelConfig(f"{path}: 'batching' must be a mapping")
        for key, value in batching.items():
            kind = BATCHING_KEYS.get(key)
            if kind is None:
                raise InvalidModelConfig(f"{path}: unknown batching setting {key!r}")
            if not isinstance(value, kind) and not (kind is float and isinstance(value, int)):
                raise InvalidModelConfig(f"{path}: batching.{key} must be a {kind.__name__}")
            values[key] = value
    if values["max_batch_size"] < 1 or values["max_delay_ms"] < 0:
        raise InvalidModelConfig(f"{path}: max_batch_size must be >= 1 and max_delay_ms >= 0")
    policy = BatchPolicy(values["max_batch_size"], values["max_delay_ms"] / 1000.0, values["adaptive"])
    return ModelConfig(batching=policy, description=description)
