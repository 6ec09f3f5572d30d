"""The request bodies ``make bench`` sends, written once under bench/.work so every side gets the same bytes.

One digit and a hundred digits as JSON ``instances``; one 224x224 picture for MobileNetV2 as a
``.npy`` body (uint8) and as a JPEG upload (multipart/form-data, one part named ``image``).
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import orjson

from bench.loadgen import MULTIPART_BOUNDARY
from bench.measure import WORK


def payloads() -> dict[str, tuple[Path, int]]:
    """Request bodies: one digit (JSON), a hundred digits (JSON), one 224x224 image as ``.npy``
    and the same image as a JPEG upload (multipart/form-data, one part named ``image``)."""
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(int)
    out = {"digits": (WORK / "digits-1.json", 1), "digits100": (WORK / "digits-100.json", 100),
           "mobilenet": (WORK / "mobilenet-1.npy", 1), "mobilenet-jpeg": (WORK / "mobilenet-1.multipart", 1)}
    out["digits"][0].write_bytes(orjson.dumps({"instances": images[:1].tolist()}))
    out["digits100"][0].write_bytes(orjson.dumps({"instances": images[:100].tolist()}))
    image = bench_image()
    buffer = io.BytesIO()
    np.save(buffer, image[None])
    out["mobilenet"][0].write_bytes(buffer.getvalue())
    out["mobilenet-jpeg"][0].write_bytes(multipart_jpeg(image))
    return out


def bench_image() -> np.ndarray:
    """A 224x224 RGB picture with smooth gradients and some noise, as a photograph has: uint8."""
    rows, cols = np.mgrid[0:224, 0:224]
    noise = np.random.default_rng(0).integers(0, 40, (224, 224, 3))
    channels = np.stack([rows, cols, (rows + cols) // 2], axis=-1)
    return np.clip(channels + noise, 0, 255).astype(np.uint8)


def multipart_jpeg(image: np.ndarray) -> bytes:
    """The image as a JPEG (quality 90) in a multipart/form-data body with one part, ``image``."""
    from PIL import Image

    jpeg = io.BytesIO()
    Image.fromarray(image).save(jpeg, format="JPEG", quality=90)
    head = (f"--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"image.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + jpeg.getvalue() + f"\r\n--{MULTIPART_BOUNDARY}--\r\n".encode()
