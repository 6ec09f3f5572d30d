"""The OpenAPI 3.1 document, assembled from ``shared.schemas`` (the schemas the API validates
with) and the route table, and a self-contained page that renders it at ``/docs``."""
from __future__ import annotations

import html
from typing import Any

from shared.schemas import COMPONENTS
from web import idempotency, openapi_v2

PROBLEM_TYPES = {
    "400": "Malformed JSON (NaN and Infinity included) or query parameter",
    "401": "API keys are configured and the request has no valid Bearer key",
    "403": "An operator route (POST /v1/models:reload) called without an operator key (INFERQ_ADMIN_KEYS)",
    "404": "No such job, model or route",
    "405": "Method not allowed",
    "409": "Conflict with the job's state",
    "413": "Body over INFERQ_MAX_BODY_BYTES",
    "415": "Unsupported Content-Type",
    "422": "Body does not fit the model or the limits (or, for :predict, the model failed on it)",
    "429": "Over a rate limit (submissions or redeliveries); see Retry-After",
    "503": "Redis unavailable, the model's queue full, or its estimated wait over the job's max_queue_s; "
           "see Retry-After",
    "504": "The :predict job did not finish in INFERQ_PREDICT_TIMEOUT_S; Location names the job",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _problems(*codes: str) -> dict:
    return {code: {"description": PROBLEM_TYPES[code],
                   "content": {"application/problem+json": {"schema": _ref("Problem")}}} for code in codes}


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
MODEL = {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
WAIT = {"name": "wait", "in": "query", "required": False,
        "description": "Seconds to block until the job ends (capped by INFERQ_WAIT_CAP_S).",
        "schema": {"type": "number", "minimum": 0}}
VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "Replays return the original job for 24 h; another body with the same key is 409.",
                   "schema": {"type": "string", "pattern": idempotency.KEY_PATTERN}}
TRACEPARENT = {"name": "traceparent", "in": "header", "required": False, "schema": {"type": "string"},
               "description": "W3C Trace Context: the job joins this trace (docs/tracing.md)."}
TRACE_HEADER = {"traceparent": {"schema": {"type": "string"}, "description": "The job's trace context, when tracing is on"}}
PRIORITY = {"name": "Inferq-Priority", "in": "header", "required": False,
            "description": "The job's lane when the body cannot say (binary bodies, :predict); a JSON body's "
                           "'priority' takes its place: high, normal or low (422 otherwise).", "schema": {"type": "string"}}
MAX_QUEUE_S = {"name": "Inferq-Max-Queue-S", "in": "header", "required": False,
               "description": "Start within S seconds or end 'expired' (0 < S <= the job TTL); a JSON body's "
                              "'max_queue_s' takes its place (422 otherwise). 503 at once when the estimated wait is longer.",
               "schema": {"type": "string"}}
PREFER = {"name": "Prefer", "in": "header", "required": False,
          "description": "`wait=S`: answer 200 with the finished job if it ends within S seconds.",
          "schema": {"type": "string"}}


def example_for(signature) -> dict:
    """An example drawn from a served model: its name, version and one all-zero instance."""
    def zeros(shape):
        return 0.0 if not shape else [zeros(shape[1:]) for _ in range(shape[0] or 1)]

    if len(signature.inputs) == 1:
        instance = zeros(signature.inputs[0].instance_shape)
    else:
        instance = {spec.name: zeros(spec.instance_shape) for spec in signature.inputs}
    return {"model": signature.name, "version": signature.version, "instance": instance}


def document(example: dict | None = None) -> dict:
    """The whole OpenAPI document; ``example`` (from ``example_for``) fills in examples that
    fit a model this deployment serves, so readers and API fuzzers start from a valid call."""
    model_param, version_param = dict(MODEL), dict(VERSION)
    submit_body = {"schema": _ref("Submit")}
    predict_body = {"schema": _ref("Predict")}
    if example is not None:
        model_param["example"] = example["model"]
        version_param["example"] = example["version"]
        submit_body["example"] = {"instances": [example["instance"]]}
        predict_body["example"] = {"instances": [example["instance"]]}
    submit = {
        "operationId": "submitJob", "summary": "Submit an inference job", "tags": ["jobs"],
        "parameters": [model_param, PREFER, IDEMPOTENCY_KEY, TRACEPARENT, PRIORITY, MAX_QUEUE_S],
        "requestBody": {"required": True, "content": {
            "application/json": submit_body,
            "application/x-npy": {"schema": {"type": "string", "contentMediaType": "application/x-npy",
                                             "description": "One .npy array; first axis: instances."}},
            "multipart/form-data": {"schema": {
                "type": "object", "description": "PNG or JPEG files, one instance each, for models whose "
                                                 "inferq.yaml declares preprocessing.image.",
                "properties": {"image": {"type": "string", "contentMediaType": "image/png"}}}}}},
        "responses": {"202": {**_json("Job", "Accepted; Location names the job"),
                              "headers": {"Location": {"schema": {"type": "string"}}, **TRACE_HEADER},
                              "links": {"GetJob": {"operationId": "getJob",
                                                   "parameters": {"job_id": "$response.body#/id"}},
                                        "CancelJob": {"operationId": "cancelJob",
                                                      "parameters": {"job_id": "$response.body#/id"}},
                                        "ListDeliveries": {"operationId": "listDeliveries",
                                                           "parameters": {"job_id": "$response.body#/id"}},
                                        "Redeliver": {"operationId": "redeliver",
                                                      "parameters": {"job_id": "$response.body#/id"}}}},
                      "200": {**_json("Job", "Finished within the Prefer: wait time"), "headers": TRACE_HEADER},
                      **_problems("400", "404", "409", "413", "415", "422", "503")},
    }
    pinned = {**submit, "operationId": "submitPinnedJob", "summary": "Submit a job to one model version",
              "parameters": [model_param, version_param, PREFER, IDEMPOTENCY_KEY, TRACEPARENT, PRIORITY, MAX_QUEUE_S]}
    predict = {
        "operationId": "predict", "summary": "TF Serving-compatible predict (queued, waits for the result)",
        "tags": ["tf-serving"], "parameters": [model_param, PRIORITY, MAX_QUEUE_S],
        "requestBody": {"required": True, "content": {"application/json": predict_body}},
        "responses": {"200": _json("PredictResponse", "predictions (rows) or outputs (columns)"),
                      **_problems("400", "404", "409", "413", "415", "422", "503", "504")},
    }
    predict_pinned = {**predict, "operationId": "predictPinned",
                      "parameters": [model_param, version_param, PRIORITY, MAX_QUEUE_S],
                      "summary": "TF Serving-compatible predict with one model version"}
    paths: dict[str, dict[str, Any]] = {
        "/v1/models/{model}:predict": {"post": predict},
        "/v1/models/{model}/versions/{version}:predict": {"post": predict_pinned},
        "/v1/models:reload": {"post": {
            "operationId": "reloadModels", "summary": "Workers rescan the model repository now",
            "tags": ["models"],
            "responses": {"202": _json("Reload", "Workers notified"), **_problems("403", "503")}}},
        "/v1/models/{model}/jobs": {"post": submit},
        "/v1/models/{model}/versions/{version}/jobs": {"post": pinned},
        "/v1/models/{model}/versions/{version}": {"get": {
            "operationId": "getModelVersion", "summary": "One model version: signature, config, state",
            "tags": ["models"],
            "parameters": [model_param, version_param],
            "responses": {"200": _json("ModelVersion", "The version"), **_problems("404", "503")}}},
        "/v1/jobs/{job_id}": {
            "get": {"operationId": "getJob", "summary": "Read (or long-poll) a job", "tags": ["jobs"],
                    "parameters": [JOB_ID, WAIT],
                    "responses": {"200": _json("Job", "The job"), **_problems("400", "404", "503")}},
            "delete": {"operationId": "cancelJob", "summary": "Cancel a queued or running job", "tags": ["jobs"],
                       "parameters": [JOB_ID],
                       "responses": {"200": _json("Job", "Canceled"), **_problems("404", "409", "503")}},
        },
        "/v1/jobs/{job_id}/deliveries": {"get": {
            "operationId": "listDeliveries", "summary": "Webhook delivery attempts", "tags": ["webhooks"],
            "parameters": [JOB_ID],
            "responses": {"200": _json("Deliveries", "Every attempt"), **_problems("404", "503")}}},
        "/v1/jobs/{job_id}/deliveries/redeliver": {"post": {
            "operationId": "redeliver", "summary": "Send the terminal event again (same webhook-id)",
            "tags": ["webhooks"], "parameters": [JOB_ID],
            "responses": {"202": _json("Redelivery", "Queued"), **_problems("404", "409", "429", "503")}}},
        "/v1/models": {"get": {
            "operationId": "listModels", "summary": "Served models with their signatures", "tags": ["models"],
            "responses": {"200": _json("ModelList", "Models"), **_problems("503")}}},
        "/v1/models/{model}": {"get": {
            "operationId": "getModel", "summary": "One model", "tags": ["models"], "parameters": [model_param],
            "responses": {"200": _json("Model", "The model"), **_problems("404", "503")}}},
        "/v1/stats": {"get": {
            "operationId": "getStats", "summary": "Dashboard figures: per model now, 15 minutes of history, "
                                                  "webhooks, recent failures", "tags": ["operations"],
            "responses": {"200": _json("Stats", "The figures"), **_problems("503")}}},
        "/dashboard": {"get": {"operationId": "dashboard", "summary": "Live dashboard page", "tags": ["operations"],
                               "responses": {"200": {"description": "HTML",
                                                     "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        "/healthz": {"get": {"operationId": "healthz", "summary": "Process alive", "tags": ["operations"],
                             "responses": {"200": _json("Health", "Alive")}}},
        "/readyz": {"get": {"operationId": "readyz", "summary": "Redis reachable and a model loaded",
                            "tags": ["operations"],
                            "responses": {"200": _json("Ready", "Ready"), **_problems("503")}}},
        "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus text exposition",
                             "tags": ["operations"],
                             "responses": {"200": {"description": "Metrics",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}},
                                           **_problems("404")}}},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "tags": ["operations"],
                                  "responses": {"200": {"description": "OpenAPI 3.1",
                                                        "content": {"application/json": {"schema": {}}}}}}},
        "/docs": {"get": {"operationId": "docs", "summary": "This document as a page", "tags": ["operations"],
                          "responses": {"200": {"description": "HTML",
                                                "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    }
    paths.update(openapi_v2.paths(_problems, model_param, version_param))
    for path, operations in paths.items():
        if path.startswith(("/v1/", "/v2")) and not path.startswith("/v2/health/"):
            for operation in operations.values():
                operation["responses"].update(_problems("401"))
                operation["security"] = [{"apiKey": []}, {}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "inferq", "version": "1",
                 "description": "Queue-backed asynchronous inference for Keras/TensorFlow models."},
        "paths": paths,
        "components": {"schemas": {**COMPONENTS, **openapi_v2.SCHEMAS},
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                                      "description": "One of INFERQ_API_KEYS, when set."}}},
    }


def page(spec: dict) -> str:
    """A readable, dependency-free HTML rendering of the document (no CDN needed)."""
    import json

    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = ", ".join(sorted(op["responses"]))
            rows.append(f"<section><h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                        f"<p>{html.escape(op['summary'])}</p><p>Responses: {codes}</p></section>")
    schemas = "".join(f"<h3 id='{name}'>{name}</h3><pre>{html.escape(json.dumps(schema, indent=2))}</pre>"
                      for name, schema in spec["components"]["schemas"].items())
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>inferq API</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}"
            "pre{background:#f4f4f4;padding:.5rem;overflow:auto}h2{font-size:1.1rem}</style></head><body>"
            f"<h1>inferq API v1</h1><p>{html.escape(spec['info']['description'])} "
            "Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>"
            + "".join(rows) + "<h2>Schemas</h2>" + schemas + "</body></html>")
