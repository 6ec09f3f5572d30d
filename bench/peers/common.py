"""What the baseline peers share: where the models are and how a request body is read.

The peers take the same wire formats as inferq (JSON ``instances``, a ``.npy`` body, or an
uploaded JPEG), so the load generator sends identical payloads to every system.
"""
from __future__ import annotations

import base64
import io
import os

import numpy as np
import orjson

MODELS_DIR = os.environ.get("PEER_MODELS_DIR", "models")


def load_models() -> dict:
    """Every ``<name>/1/model.keras`` under PEER_MODELS_DIR, loaded the tutorial way."""
    import keras

    models = {}
    for name in sorted(os.listdir(MODELS_DIR)):
        path = os.path.join(MODELS_DIR, name, "1", "model.keras")
        if os.path.exists(path):
            models[name] = keras.saving.load_model(path, compile=False)
    return models


def decode(body: bytes, content_type: str) -> np.ndarray:
    """Instances from a JSON or .npy body."""
    if content_type.startswith("application/x-npy"):
        return np.load(io.BytesIO(body), allow_pickle=False).astype(np.float32)
    return np.asarray(orjson.loads(body)["instances"], dtype=np.float32)


def image_tensor(image) -> np.ndarray:
    """One uploaded picture as inferq's ``preprocessing.image`` makes it for MobileNetV2:
    RGB, 224x224 (bilinear), float32 pixels 0..255."""
    from PIL import Image

    image.draft("RGB", (224, 224))
    return np.asarray(image.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), dtype=np.float32)


def to_wire(body: bytes, content_type: str) -> str:
    """A JSON-safe string carrying the body, for a Celery argument."""
    return content_type + ";" + base64.b64encode(body).decode()


def from_wire(text: str) -> np.ndarray:
    content_type, encoded = text.split(";", 1)
    return decode(base64.b64decode(encoded), content_type)
