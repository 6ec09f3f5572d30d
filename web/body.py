"""Reading request bodies and query parameters strictly: the right type, size and syntax."""
from __future__ import annotations

import io
import math
import re

import numpy as np
import orjson
from flask import Request
from numpy.lib import format as npy_format

from shared.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

JSON_MIMETYPE = "application/json"
NPY_MIMETYPE = "application/x-npy"
MULTIPART_MIMETYPE = "multipart/form-data"
SUBMIT_MIMETYPES = (JSON_MIMETYPE, NPY_MIMETYPE, MULTIPART_MIMETYPE)
PREFER_WAIT = re.compile(r"(?:^|[;,\s])wait\s*=\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)


def require_type(request: Request, accepted: tuple[str, ...]) -> str:
    """The request's media type if it is one of ``accepted``, else 415."""
    if request.mimetype not in accepted:
        sent = request.content_type or "no Content-Type"
        raise UnsupportedMediaType(f"send Content-Type: {' or '.join(accepted)} (got {sent})")
    return request.mimetype


def read_bytes(request: Request, max_bytes: int) -> bytes:
    """The raw body, or 413 when it is over the limit."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(f"the body is {request.content_length} bytes; the limit is {max_bytes}")
    data = request.get_data(cache=False)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the body exceeds the limit of {max_bytes} bytes")
    return data


def count_json_values(data: bytes, max_values: int) -> None:
    """413 unless ``data`` can hold at most ``max_values`` JSON values, checked before parsing.

    Every value is the document itself, the first member of an array or object, or follows a
    comma, so ``1 + [ + { + ,`` bounds the count from above (commas and brackets inside strings
    only make it stricter). That bounds what parsing allocates: 30 MiB of ``[],`` would
    otherwise become ten million lists, about 900 MiB, before any other check could run.
    """
    upper_bound = 1 + data.count(b"[") + data.count(b"{") + data.count(b",")
    if upper_bound > max_values:
        raise PayloadTooLarge(f"the body holds up to {upper_bound} JSON values; the limit is {max_values} "
                              "(send large arrays as application/x-npy)")


def parse_json(data: bytes, max_values: int):
    """Decode JSON strictly once its value count is known to be in bounds; 413 or 400 otherwise."""
    count_json_values(data, max_values)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


NPY_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
"""The ``.npy`` header versions accepted (3.0 differs only in allowing utf-8 field names)."""


def parse_npy(data: bytes) -> np.ndarray:
    """Decode one ``.npy`` array, or 400: never unpickled, never an archive, and its header
    checked before anything is allocated, so its bytes must be exactly what the shape and
    dtype need (an absurd shape, or a valid array followed by junk, is refused)."""
    stream = io.BytesIO(data)
    try:
        reader = NPY_HEADER_READERS.get(npy_format.read_magic(stream))
        if reader is None:
            raise ValueError("only .npy format versions 1.0 and 2.0 are accepted")
        shape, fortran_order, dtype = reader(stream, max_header_size=10_000)
    except Exception as exc:  # noqa: BLE001 - numpy reads the header as a Python literal: tokenize, ast and friends can raise anything
        raise BadRequest(f"the body is not a single .npy array: {str(exc)[:200]}") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise BadRequest(f"the .npy array has dtype {dtype}; send numbers")
    needed = math.prod(shape) * dtype.itemsize
    if stream.tell() + needed != len(data):
        raise BadRequest(f"the .npy header promises {needed} bytes of data for shape {shape}; "
                         f"the body carries {len(data) - stream.tell()}")
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=stream.tell())
    return array.reshape(shape, order="F" if fortran_order else "C")


def wait_seconds(raw: str | None, cap_s: float) -> float:
    """The ``wait`` query parameter as seconds, capped; 400 when it is not a number >= 0."""
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"wait must be a number of seconds, got {raw!r}") from None
    if not value >= 0 or value == float("inf"):
        raise BadRequest(f"wait must be a finite number of seconds >= 0, got {raw!r}")
    return min(value, cap_s)


def prefer_wait(header: str | None, cap_s: float) -> float:
    """Seconds asked for by a ``Prefer: wait=S`` header (RFC 7240), capped; 0 when absent."""
    if not header:
        return 0.0
    match = PREFER_WAIT.search(header)
    return min(float(match.group(1)), cap_s) if match else 0.0
