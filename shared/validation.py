"""Checks a parsed request body against a model signature before any job is queued.

Every rejection is an ``InvalidInput`` (422) whose detail names the instance index,
the expected shape and the received shape.
"""
from __future__ import annotations

import numpy as np

from shared.errors import InvalidInput
from shared.signatures import ModelSignature

MAX_RANK_REPORTED = 32
"""How deep the received-shape probe descends; deeper nesting is reported, not walked."""

DTYPE_LIMITS = {
    "float16": (-65504.0, 65504.0),
    "float32": (-3.4028235e38, 3.4028235e38),
    "float64": (float("-inf"), float("inf")),
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
}
"""Values each input dtype can hold; anything outside would overflow silently in the worker."""


def validate_instances(instances: list, signature: ModelSignature, max_instances: int,
                       max_elements: int, may_hold_booleans: bool = True) -> None:
    """Raise ``InvalidInput`` unless every instance matches the model's single input.

    numpy checks well-formed input in one pass; anything it cannot vouch for is walked in
    Python, which is slower but names the exact position of the problem. numpy would turn
    JSON booleans into numbers, so the caller says whether the body could hold any.
    """
    _check_count(len(instances), max_instances)
    spec = signature.inputs[0]
    expected = spec.instance_shape
    if not may_hold_booleans and _fits_as_array(instances, spec.dtype, expected, max_elements):
        return
    low, high = DTYPE_LIMITS.get(spec.dtype, DTYPE_LIMITS["float64"])
    integral = spec.dtype.startswith(("int", "uint"))
    elements = 0
    for index, instance in enumerate(instances):
        received = probe_shape(instance)
        if not shape_matches(received, expected):
            raise InvalidInput(
                f"instances[{index}] has shape {format_shape(received)}, "
                f"model {signature.name} expects {format_shape(expected)}",
                instance=index, expected_shape=list(expected), received_shape=list(received),
            )
        elements += _check_values(instance, received, f"instances[{index}]", low, high, integral)
        if elements > max_elements:
            raise InvalidInput(f"the job carries more than {max_elements} numbers")


def validate_array(array: np.ndarray, signature: ModelSignature, max_instances: int,
                   max_elements: int) -> None:
    """Raise ``InvalidInput`` unless a binary array (first axis: instances) fits the model."""
    spec = signature.inputs[0]
    if array.ndim == 0:
        raise InvalidInput("the array is a scalar; its first axis must hold the instances")
    _check_count(len(array), max_instances)
    if array.dtype.kind not in "iuf":
        raise InvalidInput(f"the array has dtype {array.dtype}; model {signature.name} expects {spec.dtype}")
    expected = spec.instance_shape
    if not shape_matches(array.shape[1:], expected):
        raise InvalidInput(
            f"instances have shape {format_shape(array.shape[1:])}, "
            f"model {signature.name} expects {format_shape(expected)}",
            expected_shape=list(expected), received_shape=list(array.shape[1:]))
    if array.size > max_elements:
        raise InvalidInput(f"the job carries more than {max_elements} numbers")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInput("the array holds NaN or Infinity")
    if not _within_dtype(array, spec.dtype):
        raise InvalidInput(f"the array holds values outside the range of {spec.dtype}")


def _check_count(count: int, max_instances: int) -> None:
    if count == 0:
        raise InvalidInput("'instances' is empty; send at least one example")
    if count > max_instances:
        raise InvalidInput(f"{count} instances exceed the limit of {max_instances} per job")


def _fits_as_array(instances: list, dtype: str, expected, max_elements: int) -> bool:
    try:
        array = np.asarray(instances)
    except (ValueError, OverflowError, TypeError):
        return False
    return (array.dtype.kind in "iuf" and array.ndim == len(expected) + 1
            and shape_matches(array.shape[1:], expected) and array.size <= max_elements
            and _within_dtype(array, dtype))


def _within_dtype(array: np.ndarray, dtype: str) -> bool:
    """True when every value fits the model's dtype (and is whole, for integer dtypes)."""
    if array.size == 0:
        return True
    low, high = DTYPE_LIMITS.get(dtype, DTYPE_LIMITS["float64"])
    if array.min() < low or array.max() > high:
        return False
    if dtype.startswith(("int", "uint")) and array.dtype.kind == "f":
        return bool((array == np.floor(array)).all())
    return True


def probe_shape(value) -> tuple[int, ...]:
    """The shape suggested by following first elements; raggedness is caught later."""
    shape = []
    while isinstance(value, list) and len(shape) < MAX_RANK_REPORTED:
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def shape_matches(received: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    """True when ranks agree and every fixed dimension is equal."""
    if len(received) != len(expected):
        return False
    return all(want is None or want == got for got, want in zip(received, expected))


def format_shape(shape) -> str:
    """Python tuple notation, with None for free dimensions: (8, 8), (3,), ()."""
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _check_values(value, shape, where, low, high, integral) -> int:
    """Walk one instance: reject ragged lists and non-numbers; return its element count."""
    if not shape:
        if type(value) not in (int, float):
            raise InvalidInput(f"{where} is {_describe(value)}, expected a number")
        if not low <= value <= high:
            raise InvalidInput(f"{where} = {value!r} is outside the range of the model's dtype")
        if integral and type(value) is float and not value.is_integer():
            raise InvalidInput(f"{where} = {value!r} is not an integer")
        return 1
    if not isinstance(value, list) or len(value) != shape[0]:
        got = f"length {len(value)}" if isinstance(value, list) else _describe(value)
        raise InvalidInput(f"{where} has {got}, expected a list of length {shape[0]} (ragged input)")
    total = 0
    for position, item in enumerate(value):
        total += _check_values(item, shape[1:], f"{where}[{position}]", low, high, integral)
    return total


def _describe(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
