"""The Open Inference Protocol's (v2) request and response bodies, with Triton's binary tensors.

A request is a JSON header, optionally followed by raw little-endian tensors whose sizes the
header gives (``parameters.binary_data_size``) and whose JSON length is in the
``Inference-Header-Content-Length`` header. Every size is checked against the shape, the
datatype and the model's limits before a byte of tensor data is read into an array.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from shared.errors import BadRequest
from shared.signatures import ModelSignature, TensorSpec
from web.body import count_json_values

DATATYPES = {
    "bool": "BOOL", "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64",
}
"""numpy dtype names (as workers publish them) -> the protocol's datatype names."""

NUMPY_DTYPES = {name: np.dtype(dtype).newbyteorder("<") for dtype, name in DATATYPES.items()}
"""The protocol's datatype names -> little-endian numpy dtypes (the wire's byte order)."""

HEADER_LENGTH = "Inference-Header-Content-Length"


class ProtocolError(BadRequest):
    """A v2 request the protocol or the model cannot accept (400, as Triton answers)."""


@dataclass(frozen=True)
class Tensor:
    """One input of a request, checked and decoded."""

    name: str
    array: np.ndarray


@dataclass(frozen=True)
class InferRequest:
    """A decoded infer call: its id, inputs, which outputs and how each should come back."""

    id: str | None
    inputs: list[Tensor]
    outputs: list[str]
    binary_outputs: set[str]


def datatype(spec: TensorSpec) -> str:
    """The protocol's name for a tensor's dtype (``FP32`` ...)."""
    return DATATYPES.get(spec.dtype, spec.dtype.upper())


def tensor_metadata(spec: TensorSpec) -> dict:
    """``{name, datatype, shape}`` with ``-1`` for a variable dimension."""
    return {"name": spec.name, "datatype": datatype(spec), "shape": [-1 if d is None else d for d in spec.shape]}


def split_body(body: bytes, header_length: str | None, max_values: int) -> tuple[dict, bytes]:
    """The JSON header and the binary tail of a request body (the header holding at most
    ``max_values`` JSON values, counted before it is parsed)."""
    if header_length is None:
        return _json_object(body, max_values), b""
    try:
        length = int(header_length)
    except ValueError:
        raise ProtocolError(f"{HEADER_LENGTH} must be a whole number, got {header_length[:40]!r}") from None
    if not 0 < length <= len(body):
        raise ProtocolError(f"{HEADER_LENGTH} is {length}; the body has {len(body)} bytes")
    return _json_object(body[:length], max_values), body[length:]


def _json_object(data: bytes, max_values: int) -> dict:
    count_json_values(data, max_values)
    try:
        header = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"the inference header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("the inference request must be a JSON object")
    return header


def parse_request(header: dict, tail: bytes, signature: ModelSignature, max_instances: int,
                  max_elements: int) -> InferRequest:
    """Decode and check every input against ``signature``; unknown outputs are refused."""
    raw_inputs = header.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise ProtocolError("'inputs' must be a non-empty list of tensors")
    specs = {spec.name: spec for spec in signature.inputs}
    given = [item.get("name") if isinstance(item, dict) else None for item in raw_inputs]
    if sorted(map(str, given)) != sorted(specs):
        raise ProtocolError(f"model {signature.name} takes inputs {sorted(specs)}, got {given}")
    budget = Budget(max_instances, max_elements)
    offset, tensors = 0, []
    for item in raw_inputs:
        tensor, used = decode_input(item, specs[item["name"]], tail, offset, budget)
        tensors.append(tensor)
        offset += used
    if offset != len(tail):
        raise ProtocolError(f"the body carries {len(tail)} bytes of binary tensors; the inputs declare {offset}")
    if len({len(t.array) for t in tensors}) != 1:
        raise ProtocolError("every input must have the same first dimension (the batch)")
    outputs, binary = requested_outputs(header, signature)
    request_id = header.get("id")
    return InferRequest(str(request_id) if request_id is not None else None, tensors, outputs, binary)


@dataclass
class Budget:
    """The model's limits, spent across a request's inputs."""

    max_instances: int
    max_elements: int
    elements: int = 0


def decode_input(item: dict, spec: TensorSpec, tail: bytes, offset: int, budget: Budget) -> tuple[Tensor, int]:
    """One input as an array of the model's dtype, and how many tail bytes it took."""
    name = spec.name
    shape = _checked_shape(item.get("shape"), spec, budget)
    if item.get("datatype") != datatype(spec):
        raise ProtocolError(f"input {name!r} has datatype {item.get('datatype')!r}; "
                            f"model expects {datatype(spec)}")
    dtype = NUMPY_DTYPES[datatype(spec)]
    count = math.prod(shape)
    size = (item.get("parameters") or {}).get("binary_data_size")
    if size is None:
        return Tensor(name, _from_json(item.get("data"), dtype, shape, name)), 0
    if not isinstance(size, int) or isinstance(size, bool) or size != count * dtype.itemsize:
        raise ProtocolError(f"input {name!r}: binary_data_size is {size!r}; shape {shape} of "
                            f"{datatype(spec)} needs {count * dtype.itemsize} bytes")
    if offset + size > len(tail):
        raise ProtocolError(f"input {name!r} declares {size} binary bytes; only {len(tail) - offset} remain")
    array = np.frombuffer(tail, dtype=dtype, count=count, offset=offset).reshape(shape)
    return Tensor(name, array.astype(dtype.newbyteorder("="))), size


def _checked_shape(raw, spec: TensorSpec, budget: Budget) -> list[int]:
    """The request's shape, checked against the model's before anything is allocated."""
    if not isinstance(raw, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw):
        raise ProtocolError(f"input {spec.name!r}: 'shape' must be a list of non-negative integers")
    expected = [-1 if d is None else d for d in spec.shape]
    if len(raw) != len(expected) or any(e != -1 and e != d for e, d in zip(expected, raw, strict=True)):
        raise ProtocolError(f"input {spec.name!r} has shape {raw}; model expects {expected}")
    if not 1 <= raw[0] <= budget.max_instances:
        raise ProtocolError(f"input {spec.name!r}: the batch dimension is {raw[0]}; "
                            f"between 1 and {budget.max_instances} instances are accepted")
    budget.elements += math.prod(raw)
    if budget.elements > budget.max_elements:
        raise ProtocolError(f"the request carries more than {budget.max_elements} numbers")
    return raw


def _from_json(data, dtype: np.dtype, shape: list[int], name: str) -> np.ndarray:
    """``data`` (flat or nested, row-major) as an array of ``shape``."""
    if not isinstance(data, list):
        raise ProtocolError(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
    try:
        array = np.asarray(data, dtype=dtype.newbyteorder("="))
    except (ValueError, TypeError, OverflowError) as exc:
        raise ProtocolError(f"input {name!r}: 'data' does not hold {dtype.name} numbers: {exc}") from None
    if array.size != math.prod(shape):
        raise ProtocolError(f"input {name!r} holds {array.size} values; shape {shape} needs {math.prod(shape)}")
    return array.reshape(shape)


def requested_outputs(header: dict, signature: ModelSignature) -> tuple[list[str], set[str]]:
    """Which outputs to return (all by default) and which of them as binary data."""
    known = [spec.name for spec in signature.outputs]
    all_binary = bool((header.get("parameters") or {}).get("binary_data_output", False))
    asked = header.get("outputs")
    if asked is None:
        return known, set(known) if all_binary else set()
    if not isinstance(asked, list) or not all(isinstance(o, dict) for o in asked):
        raise ProtocolError("'outputs' must be a list of objects with a 'name'")
    names, binary = [], set()
    for output in asked:
        name = output.get("name")
        if name not in known:
            raise ProtocolError(f"model {signature.name} has no output {name!r}; it has {known}")
        names.append(name)
        if (output.get("parameters") or {}).get("binary_data", all_binary):
            binary.add(name)
    return names, binary


def output_arrays(predictions_json: bytes, signature: ModelSignature) -> dict[str, np.ndarray]:
    """A finished job's predictions (rows, or ``{output: row}`` per row) as one array per output."""
    rows = orjson.loads(predictions_json)
    specs = signature.outputs
    if len(specs) == 1:
        return {specs[0].name: np.asarray(rows, dtype=specs[0].dtype)}
    return {spec.name: np.asarray([row[spec.name] for row in rows], dtype=spec.dtype) for spec in specs}


def encode_response(request: InferRequest, signature: ModelSignature, arrays: dict[str, np.ndarray],
                    job_id: str) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary tensors follow it."""
    specs = {spec.name: spec for spec in signature.outputs}
    outputs, tail = [], []
    for name in request.outputs:
        array = np.ascontiguousarray(arrays[name], dtype=NUMPY_DTYPES[datatype(specs[name])])
        entry: dict[str, Any] = {"name": name, "datatype": datatype(specs[name]), "shape": list(array.shape)}
        if name in request.binary_outputs:
            entry["parameters"] = {"binary_data_size": array.nbytes}
            tail.append(array.tobytes())
        else:
            entry["data"] = array.reshape(-1).tolist()
        outputs.append(entry)
    body = {"model_name": signature.name, "model_version": str(signature.version), "outputs": outputs,
            "parameters": {"inferq_job_id": job_id}}
    if request.id is not None:
        body["id"] = request.id
    header = orjson.dumps(body)
    return (header + b"".join(tail), len(header)) if tail else (header, None)
