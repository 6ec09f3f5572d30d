"""Builds the benchmark models into a model repository: the demo digits CNN and MobileNetV2.

MobileNetV2 comes from ``keras.applications`` with ``weights=None``: nothing is downloaded.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent


def build(repository: Path) -> dict[str, Path]:
    """``{name: path to model.keras}`` for each benchmark model, built if missing."""
    paths = {"digits": repository / "digits" / "1" / "model.keras",
             "mobilenet": repository / "mobilenet" / "1" / "model.keras"}
    if not paths["digits"].exists():
        paths["digits"].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "models" / "digits" / "1" / "model.keras", paths["digits"])
    if not paths["mobilenet"].exists():
        import keras

        keras.utils.set_random_seed(0)
        model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None, classes=1000)
        paths["mobilenet"].parent.mkdir(parents=True, exist_ok=True)
        model.save(paths["mobilenet"])
    config = paths["mobilenet"].parent / "inferq.yaml"
    if not config.exists():  # JPEG uploads become the same float32 224x224x3 tensor as the .npy body
        config.write_text(MOBILENET_CONFIG)
    return paths


MOBILENET_CONFIG = """\
description: MobileNetV2 (keras.applications, weights=None), 224x224 RGB, pixels 0..255
preprocessing:
  image:
    size: [224, 224]
    mode: RGB
"""


if __name__ == "__main__":
    for name, path in build(Path(sys.argv[1])).items():
        print(name, path)
