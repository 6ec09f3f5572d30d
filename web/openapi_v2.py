"""The Open Inference Protocol (v2) part of the OpenAPI document: its paths and body schemas."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

TENSOR = {"type": "object", "required": ["name", "shape", "datatype"],
          "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                         "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
                         "parameters": {"type": "object"}, "data": {"type": "array"}}}

SCHEMAS: dict[str, Any] = {
    "V2ServerMetadata": {"type": "object", "required": ["name", "version", "extensions"],
                         "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                                        "extensions": {"type": "array", "items": {"type": "string"}}}},
    "V2Live": {"type": "object", "properties": {"live": {"type": "boolean"}}, "required": ["live"]},
    "V2Ready": {"type": "object", "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
                "required": ["ready"]},
    "V2ModelMetadata": {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"],
                        "properties": {"name": {"type": "string"}, "platform": {"type": "string"},
                                       "versions": {"type": "array", "items": {"type": "string"}},
                                       "inputs": {"type": "array", "items": TENSOR},
                                       "outputs": {"type": "array", "items": TENSOR}}},
    "V2InferRequest": {
        "type": "object", "required": ["inputs"],
        "description": "JSON tensors, or (binary tensor extension) this header followed by raw little-endian "
                       "tensors, its length in Inference-Header-Content-Length.",
        "properties": {"id": {"type": "string"}, "parameters": {"type": "object"},
                       "inputs": {"type": "array", "minItems": 1, "items": TENSOR},
                       "outputs": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                              "properties": {"name": {"type": "string"},
                                                                             "parameters": {"type": "object"}}}}}},
    "V2InferResponse": {"type": "object", "required": ["model_name", "outputs"],
                        "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"},
                                       "id": {"type": "string"}, "parameters": {"type": "object"},
                                       "outputs": {"type": "array", "items": TENSOR}}},
}
"""Component schemas of the v2 bodies (``#/components/schemas/V2...``)."""

HEADER_LENGTH = {"name": "Inference-Header-Content-Length", "in": "header", "required": False,
                 "description": "Length of the JSON header when binary tensors follow it.",
                 "schema": {"type": "integer", "minimum": 1}}
RESPOND_ASYNC = {"name": "Prefer", "in": "header", "required": False,
                 "description": "`respond-async` (or `wait=0`): answer 202 with the job's Location at once.",
                 "schema": {"type": "string"}}


def _ok(name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def paths(problems: Callable[..., dict], model: dict, version: dict) -> dict[str, dict[str, Any]]:
    """The v2 paths; ``problems(*codes)`` gives the documented problem+json answers."""
    def get(operation: str, summary: str, body: str, params: list, *codes: str) -> dict:
        return {"get": {"operationId": operation, "summary": summary, "tags": ["open-inference-protocol"],
                        "parameters": params, "responses": {"200": _ok(body, summary), **problems(*codes)}}}

    infer = {"operationId": "v2Infer", "summary": "Infer (queued and batched; waits up to INFERQ_PREDICT_TIMEOUT_S)",
             "tags": ["open-inference-protocol"], "parameters": [model, HEADER_LENGTH, RESPOND_ASYNC],
             "requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"$ref": "#/components/schemas/V2InferRequest"}},
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
             "responses": {"200": {"description": "Outputs: JSON, or a JSON header and binary tensors",
                                   "headers": {"Inference-Header-Content-Length": {"schema": {"type": "integer"}}},
                                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/V2InferResponse"}},
                                               "application/octet-stream": {"schema": {"type": "string",
                                                                                       "format": "binary"}}}},
                           "202": _ok("Job", "Queued (Prefer: respond-async); poll Location"),
                           **problems("400", "404", "409", "413", "422", "503", "504")}}
    pinned = {**infer, "operationId": "v2InferPinned", "parameters": [model, version, HEADER_LENGTH, RESPOND_ASYNC]}
    return {
        "/v2": get("v2ServerMetadata", "Server name, version and extensions", "V2ServerMetadata", [], "503"),
        "/v2/health/live": get("v2Live", "The server is live", "V2Live", []),
        "/v2/health/ready": get("v2Ready", "Redis answers and a model is loaded", "V2Ready", [], "400", "503"),
        "/v2/models/{model}": get("v2ModelMetadata", "The newest version's tensors", "V2ModelMetadata",
                                  [model], "404", "503"),
        "/v2/models/{model}/versions/{version}": get("v2VersionMetadata", "One version's tensors",
                                                     "V2ModelMetadata", [model, version], "404", "503"),
        "/v2/models/{model}/ready": get("v2ModelReady", "The newest version is loaded", "V2Ready",
                                        [model], "400", "404", "503"),
        "/v2/models/{model}/versions/{version}/ready": get("v2VersionReady", "That version is loaded", "V2Ready",
                                                           [model, version], "400", "404", "503"),
        "/v2/models/{model}/infer": {"post": infer},
        "/v2/models/{model}/versions/{version}/infer": {"post": pinned},
    }
