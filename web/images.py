"""PNG/JPEG uploads turned into the model's input tensor, as ``inferq.yaml`` declares.

Decoding happens in web so the queue carries tensors, exactly as a ``.npy`` submit would:
the worker neither knows nor cares that the instances began as images.

    preprocessing:
      image: {size: [H, W], mode: L|RGB, scale: s, offset: o, invert: false}

Each pixel becomes ``(invert ? 255 - p : p) * scale + offset``, resized to ``size``
(default: the input's height and width), then shaped like one instance of the input.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from shared.errors import InvalidInput, UnsupportedMediaType
from shared.signatures import ModelSignature

FORMATS = ("PNG", "JPEG")
MAX_PIXELS = 25_000_000
"""Largest image (width x height) decoded: a small file can claim a huge canvas."""


def to_array(images: list[tuple[str, bytes]], signature: ModelSignature) -> np.ndarray:
    """Stack decoded uploads, in order, into one array whose first axis is the instances."""
    config = signature.image_input
    if config is None:
        raise UnsupportedMediaType(
            f"model {signature.name} takes no image uploads (its inferq.yaml declares no "
            "preprocessing.image); send application/json or application/x-npy")
    if not images:
        raise InvalidInput("the form holds no image file; attach one or more PNG or JPEG files")
    spec = signature.inputs[0]
    shape = spec.instance_shape
    height, width, mode = _geometry(config, shape, signature.name)
    arrays = [_decode(name, data, index, width, height, mode) for index, (name, data) in enumerate(images)]
    batch = np.stack(arrays).astype(np.float32)
    if config.get("invert"):
        batch = 255.0 - batch
    batch = batch * float(config.get("scale", 1.0)) + float(config.get("offset", 0.0))
    batch = batch.reshape((len(images), *(d if d is not None else -1 for d in shape)))
    return batch.astype(spec.dtype)


def _geometry(config: dict, shape: tuple, model: str) -> tuple[int, int, str]:
    """Target height, width and colour mode: from the config, else from the input's shape."""
    channels = shape[2] if len(shape) == 3 else None
    size = config.get("size")
    if size is None:
        if len(shape) not in (2, 3) or shape[0] is None or shape[1] is None:
            raise InvalidInput(f"model {model} declares image preprocessing without a size, and its "
                               f"input shape {shape} does not give one")
        size = [shape[0], shape[1]]
    mode = config.get("mode") or ("RGB" if channels == 3 else "L")
    return int(size[0]), int(size[1]), mode


def _decode(name: str, data: bytes, index: int, width: int, height: int, mode: str) -> np.ndarray:
    where = f"image {index} ({name!r})"
    try:
        opened = Image.open(io.BytesIO(data), formats=FORMATS)
        if opened.width * opened.height > MAX_PIXELS:
            raise InvalidInput(f"{where} is {opened.width}x{opened.height}; the limit is {MAX_PIXELS} pixels")
        image = opened.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"{where} is not a readable PNG or JPEG image: {exc}") from None
    return np.asarray(image, dtype=np.float32)
