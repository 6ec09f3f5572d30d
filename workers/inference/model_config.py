"""Per-model settings from an optional ``inferq.yaml`` in a version's directory.

    description: Handwritten digits, 8x8, pixels 0..16
    batching:
      max_batch_size: 16    # most instances per forward pass
      max_delay_ms: 5       # wait for company (when adaptive is false)
      adaptive: true        # run at once when the queue is empty
    preprocessing:
      image:                # accept PNG/JPEG uploads (multipart/form-data)
        size: [8, 8]        # height, width to resize to (default: the input's shape)
        mode: L             # L (grey) or RGB (default: from the input's channels)
        scale: 0.0627       # multiply each pixel (0..255) by this ...
        offset: 0.0         # ... then add this
        invert: true        # 255 - pixel first (dark ink on white paper)
    labels: [zero, one, two]   # or labels_file: labels.txt, one per line
    top_k: 3                # labels answered per instance
    keep_versions: 2        # newest versions kept loaded
    allow_signature_change: false  # refuse a version whose inputs differ from the serving one
    time_limit_s: 300       # a forward pass over this fails its job and restarts the worker

Anything not given falls back to the ``INFERQ_*`` defaults.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from shared.settings import Settings
from workers.inference.batching import BatchPolicy

CONFIG_FILE = "inferq.yaml"
BATCHING_KEYS = {"max_batch_size": int, "max_delay_ms": float, "adaptive": bool}
IMAGE_KEYS = {"size": list, "mode": str, "scale": float, "offset": float, "invert": bool}
TOP_LEVEL_KEYS = {"description", "batching", "preprocessing", "labels", "labels_file", "top_k",
                  "keep_versions", "allow_signature_change", "time_limit_s"}
IMAGE_MODES = ("L", "RGB")


class InvalidModelConfig(ValueError):
    """``inferq.yaml`` is not valid; the model version is refused with this reason."""


@dataclass(frozen=True)
class ModelConfig:
    """What ``inferq.yaml`` says, with the service defaults filled in."""

    batching: BatchPolicy
    description: str = ""
    image: dict | None = None
    labels: tuple[str, ...] = ()
    top_k: int = 5
    keep_versions: int = 2
    allow_signature_change: bool = False
    time_limit_s: float = 300.0

    def public(self) -> dict:
        """What clients and web see of this config (published with the signature)."""
        return {
            "description": self.description,
            "batching": {"max_batch_size": self.batching.max_batch_size,
                         "max_delay_ms": round(self.batching.max_delay_s * 1000, 3),
                         "adaptive": self.batching.adaptive},
            "preprocessing": {"image": self.image} if self.image is not None else {},
            "labels": len(self.labels),
            "top_k": min(self.top_k, len(self.labels)) if self.labels else 0,
            "keep_versions": self.keep_versions,
            "time_limit_s": self.time_limit_s,
        }


def load_config(version_dir: Path, settings: Settings) -> ModelConfig:
    """Read ``version_dir/inferq.yaml`` if present; defaults otherwise."""
    path = Path(version_dir) / CONFIG_FILE
    data = _read(path) if path.exists() else {}
    unknown = set(data) - TOP_LEVEL_KEYS
    if unknown:
        raise InvalidModelConfig(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    keep = data.get("keep_versions", settings.keep_versions)
    top_k = data.get("top_k", 5)
    for key, value in (("keep_versions", keep), ("top_k", top_k)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidModelConfig(f"{path}: {key} must be a positive integer")
    time_limit = data.get("time_limit_s", settings.job_time_limit_s)
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or time_limit < 0:
        raise InvalidModelConfig(f"{path}: time_limit_s must be a number of seconds >= 0 (0: none)")
    allow_change = data.get("allow_signature_change", False)
    if not isinstance(allow_change, bool):
        raise InvalidModelConfig(f"{path}: allow_signature_change must be true or false")
    return ModelConfig(
        batching=_batching(data.get("batching"), settings, path),
        description=str(data.get("description", "")),
        image=_image(data.get("preprocessing"), path),
        labels=_labels(data, Path(version_dir), path),
        top_k=top_k,
        keep_versions=keep,
        allow_signature_change=allow_change,
        time_limit_s=float(time_limit),
    )


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidModelConfig(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidModelConfig(f"{path}: expected a mapping at the top level")
    return data


def _batching(section, settings: Settings, path: Path) -> BatchPolicy:
    values = {"max_batch_size": settings.max_batch_size, "max_delay_ms": settings.max_delay_ms,
              "adaptive": settings.batch_adaptive}
    section = section or {}
    if not isinstance(section, dict):
        raise InvalidModelConfig(f"{path}: 'batching' must be a mapping")
    for key, value in section.items():
        values[key] = _typed(value, BATCHING_KEYS, f"batching.{key}", key, path)
    if values["max_batch_size"] < 1 or values["max_delay_ms"] < 0:
        raise InvalidModelConfig(f"{path}: max_batch_size must be >= 1 and max_delay_ms >= 0")
    return BatchPolicy(values["max_batch_size"], values["max_delay_ms"] / 1000.0, values["adaptive"])


def _image(section, path: Path) -> dict | None:
    if section is None:
        return None
    if not isinstance(section, dict) or set(section) - {"image"}:
        raise InvalidModelConfig(f"{path}: 'preprocessing' must be a mapping with an 'image' entry")
    image = section.get("image")
    if image is None:
        return None
    if image is True:
        image = {}
    if not isinstance(image, dict):
        raise InvalidModelConfig(f"{path}: preprocessing.image must be a mapping")
    result = {"scale": 1.0, "offset": 0.0, "invert": False}
    for key, value in image.items():
        result[key] = _typed(value, IMAGE_KEYS, f"preprocessing.image.{key}", key, path)
    size = result.get("size")
    if size is not None and (len(size) != 2 or not all(isinstance(d, int) and d > 0 for d in size)):
        raise InvalidModelConfig(f"{path}: preprocessing.image.size must be [height, width]")
    if "mode" in result and result["mode"] not in IMAGE_MODES:
        raise InvalidModelConfig(f"{path}: preprocessing.image.mode must be one of {IMAGE_MODES}")
    return result


def _labels(data: dict, version_dir: Path, path: Path) -> tuple[str, ...]:
    if "labels" in data and "labels_file" in data:
        raise InvalidModelConfig(f"{path}: give labels or labels_file, not both")
    if "labels_file" in data:
        source = version_dir / str(data["labels_file"])
        if not source.is_file() or source.resolve().parent != version_dir.resolve():
            raise InvalidModelConfig(f"{path}: labels_file {data['labels_file']!r} is not a file beside it")
        return tuple(line.strip() for line in source.read_text().splitlines() if line.strip())
    labels = data.get("labels", [])
    if not isinstance(labels, list):
        raise InvalidModelConfig(f"{path}: labels must be a list")
    return tuple(str(label) for label in labels)


def _typed(value, kinds: dict, where: str, key: str, path: Path):
    kind = kinds.get(key)
    if kind is None:
        raise InvalidModelConfig(f"{path}: unknown setting {where!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidModelConfig(f"{path}: {where} must be a {kind.__name__}")
    return value
