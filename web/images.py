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
from PIL import Image

from shared.errors import InvalidInput, UnsupportedMediaType
from shared.signatures import ModelSignature

FORMATS = ("PNG", "JPEG")


def to_array(images: list[tuple[str, bytes]], signature: ModelSignature, max_pixels: int) -> np.ndarray:
    """Stack decoded uploads, in order, into one array whose first axis is the instances.

    Every header is read first and the canvases they claim are summed against ``max_pixels``
    before a single pixel is decoded: a 400-byte file can claim 5000x5000.
    """
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
    opened = [_open(_part(index, name), data) for index, (name, data) in enumerate(images)]
    _check_pixels(opened, max_pixels)
    pixels = np.stack([_decode(where, image, width, height, mode) for where, image in opened])
    instances = (len(images), *(d if d is not None else -1 for d in shape))
    if _keeps_pixels(config) and np.dtype(spec.dtype).kind == "f":
        return pixels.reshape(instances)
    batch = pixels.astype(np.float32)
    if config.get("invert"):
        batch = 255.0 - batch
    batch = batch * float(config.get("scale", 1.0)) + float(config.get("offset", 0.0))
    return batch.reshape(instances).astype(spec.dtype)


def _keeps_pixels(config: dict) -> bool:
    """True when the preprocessing leaves each pixel's value as it is (no invert, scale 1, offset 0).

    The job then carries the pixels as uint8, a quarter of the bytes of float32 through Redis,
    its append-only file and the worker; the worker's cast to the input's float dtype is exact.
    """
    return not config.get("invert") and float(config.get("scale", 1.0)) == 1.0 and float(config.get("offset", 0.0)) == 0.0


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


def _part(index: int, name: str) -> str:
    return f"image {index} ({name[:100]!r})"


def _open(where: str, data: bytes) -> tuple[str, Image.Image]:
    """The image with only its header read; 422 naming the part when it is not a PNG or JPEG."""
    try:
        return where, Image.open(io.BytesIO(data), formats=FORMATS)
    except Exception as exc:  # noqa: BLE001 - Pillow's header readers raise anything from SyntaxError to struct.error
        raise InvalidInput(f"{where} is not a readable PNG or JPEG image: {str(exc)[:200]}") from None


def _check_pixels(opened: list[tuple[str, Image.Image]], max_pixels: int) -> None:
    """422 when the canvases the headers claim add up to more than the request's pixel budget."""
    total = 0
    for where, image in opened:
        total += image.width * image.height
        if total > max_pixels:
            raise InvalidInput(f"{where} is {image.width}x{image.height}; the images of one request may "
                               f"hold at most {max_pixels} pixels in all")


def _decode(where: str, image: Image.Image, width: int, height: int, mode: str) -> np.ndarray:
    """Decode, convert and resize one image to uint8 pixels; any decoder error is a 422 naming the part."""
    try:
        image.draft(mode, (width, height))  # JPEG: let the decoder scale down by up to 8x, for free
        resized = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
    except Exception as exc:  # noqa: BLE001 - a corrupt stream can fail in any of Pillow's decoders
        raise InvalidInput(f"{where} is not a readable PNG or JPEG image: {str(exc)[:200]}") from None
    return np.asarray(resized, dtype=np.uint8)
