"""Checks a parsed request body against a model signature before any job is queued.

Every rejection is an ``InvalidInput`` (422) whose detail names the instance index,
the expected shape and the received shape.
"""
from __future__ import annotations

import numpy as np

from shared.errors import InvalidInput
from shared.signatures import ModelSignature, TensorSpec

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


def validate_column(values: list, spec: TensorSpec, model: str, max_elements: int,
                    may_hold_booleans: bool, label) -> int:
    """Check one input's values (one per instance) against its spec; returns the element count.

    numpy checks well-formed input in one pass; anything it cannot vouch for is walked in
    Python, which is slower but names the exact position of the problem. numpy would turn
    JSON booleans into numbers, so the caller says whether the body could hold any.
    ``label(index)`` names an instance's value in error messages.
    """
    expected = spec.instance_shape
    if not may_hold_booleans:
        size = _fits_as_array(values, spec.dtype, expected, max_elements)
        if size is not None:
            return size
    low, high = DTYPE_LIMITS.get(spec.dtype, DTYPE_LIMITS["float64"])
    integral = spec.dtype.startswith(("int", "uint"))
    elements = 0
    for index, instance in enumerate(values):
        received = probe_shape(instance)
        if not shape_matches(received, expected):
            raise InvalidInput(
                f"{label(index)} has shape {format_shape(received)}, "
                f"model {model} expects {format_shape(expected)}",
                instance=index, input=spec.name, expected_shape=list(expected),
                received_shape=list(received),
            )
        elements += _check_values(instance, received, label(index), low, high, integral)
        if elements > max_elements:
            raise InvalidInput(f"the job carries more than {max_elements} numbers")
    return elements


def named_inputs(body: dict, signature: ModelSignature, max_instances: int, max_elements: int,
                 may_hold_booleans: bool = True):
    """Validate a body's ``instances`` (rows) or ``inputs`` (TF Serving columns).

    Returns what the worker gets: the list of instances for a single-input model, or
    ``{input name: [value per instance]}`` for a multi-input one.
    """
    names = signature.input_names
    if "instances" in body:
        columns, label = _rows_to_columns(body["instances"], names, signature.name)
    else:
        columns, label = _columns(body["inputs"], names, signature.name)
    counts = {len(column) for column in columns.values()}
    if len(counts) > 1:
        raise InvalidInput("every named input must hold the same number of instances "
                           f"(got {', '.join(f'{n}: {len(c)}' for n, c in columns.items())})")
    _check_count(counts.pop(), max_instances)
    elements = 0
    for spec in signature.inputs:
        elements += validate_column(columns[spec.name], spec, signature.name, max_elements - elements,
                                    may_hold_booleans, lambda index, n=spec.name: label(index, n))
    return columns[names[0]] if len(names) == 1 else columns


def plain_rows_array(body: dict, signature: ModelSignature, max_instances: int, max_elements: int):
    """The common case at numpy speed: rows of numbers for a single-input model that numpy can
    vouch for whole, as one array in the input's dtype; None sends the body through
    ``named_inputs``, which walks it and names whatever is wrong."""
    instances = body.get("instances")
    if len(signature.inputs) != 1 or not isinstance(instances, list) or not 1 <= len(instances) <= max_instances:
        return None
    if isinstance(instances[0], dict):
        return None
    spec = signature.inputs[0]
    array = _fitting_array(instances, spec.dtype, spec.instance_shape, max_elements)
    return None if array is None else array.astype(spec.dtype)


def _rows_to_columns(instances: list, names: list[str], model: str):
    if not instances or not isinstance(instances[0], dict):
        if len(names) > 1:
            raise InvalidInput(f"model {model} takes named inputs {', '.join(names)}: send each instance "
                               f"as an object with those keys, or columns in 'inputs'")
        return {names[0]: instances}, lambda index, _name: f"instances[{index}]"
    columns: dict[str, list] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise InvalidInput(f"instances[{index}] is {_describe(instance)}; the other instances are "
                               "objects keyed by input name")
        _check_names(instance, names, model, f"instances[{index}]")
        for name in names:
            columns[name].append(instance[name])
    return columns, lambda index, name: f"instances[{index}].{name}"


def _columns(inputs, names: list[str], model: str):
    if isinstance(inputs, list):
        if len(names) > 1:
            raise InvalidInput(f"model {model} takes named inputs {', '.join(names)}: 'inputs' must be "
                               "an object with one list per input")
        return {names[0]: inputs}, lambda index, _name: f"inputs[{index}]"
    _check_names(inputs, names, model, "inputs")
    for name in names:
        if not isinstance(inputs[name], list):
            raise InvalidInput(f"inputs.{name} is {_describe(inputs[name])}, expected a list with one "
                               "entry per instance")
    return {name: inputs[name] for name in names}, lambda index, name: f"inputs.{name}[{index}]"


def _check_names(given: dict, names: list[str], model: str, where: str) -> None:
    missing = [name for name in names if name not in given]
    unknown = sorted(set(given) - set(names))
    if missing or unknown:
        parts = ([f"lacks {', '.join(repr(m) for m in missing)}"] if missing else []) + \
                ([f"has unknown {', '.join(repr(u[:64]) for u in unknown[:5])}"] if unknown else [])
        raise InvalidInput(f"{where} {' and '.join(parts)}; model {model} takes inputs {', '.join(names)}")


def validate_array(array: np.ndarray, signature: ModelSignature, max_instances: int,
                   max_elements: int) -> None:
    """Raise ``InvalidInput`` unless a binary array (first axis: instances) fits the model."""
    if len(signature.inputs) > 1:
        raise InvalidInput(f"model {signature.name} takes {len(signature.inputs)} named inputs; "
                           "a .npy body holds one array, so send JSON instead")
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


def _fits_as_array(instances: list, dtype: str, expected, max_elements: int) -> int | None:
    """The element count when numpy vouches for the whole column at once, else None."""
    array = _fitting_array(instances, dtype, expected, max_elements)
    return None if array is None else int(array.size)


def _fitting_array(instances: list, dtype: str, expected, max_elements: int) -> np.ndarray | None:
    """The column as one numeric array when it has the expected instance shape, at most
    ``max_elements`` numbers and only values ``dtype`` can hold; None otherwise."""
    try:
        array = np.asarray(instances)
    except (ValueError, OverflowError, TypeError):
        return None
    fits = (array.dtype.kind in "iuf" and array.ndim == len(expected) + 1
            and shape_matches(array.shape[1:], expected) and array.size <= max_elements
            and _within_dtype(array, dtype))
    return array if fits else None


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
    shape: list[int] = []
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
    return all(want is None or want == got for got, want in zip(received, expected, strict=True))


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
