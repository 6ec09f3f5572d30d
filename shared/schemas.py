"""JSON Schemas of the API's bodies: the submit body is validated with them, and the
OpenAPI document (``GET /openapi.json``) is built from them, so the two cannot drift."""
from __future__ import annotations

from typing import Any

from shared.webhooks import EVENTS, MAX_URL_LENGTH

Schema = dict[str, Any]
"""A JSON Schema (or OpenAPI) object: nested, so typed loosely."""

STATUSES = ["queued", "running", "succeeded", "failed", "canceled", "expired"]

PRIORITY: Schema = {"enum": ["high", "normal", "low"], "default": "normal",
                    "description": "The job's lane: high runs before normal, normal before low; each lower lane "
                                   "still gets a share of forward passes (INFERQ_LANE_SHARE). Binary bodies and "
                                   ":predict use the Inferq-Priority header."}

MAX_QUEUE_S: Schema = {"type": "number", "exclusiveMinimum": 0,
                       "description": "Start within this many seconds of submission or not at all: the job ends "
                                      "'expired' (error QueueTimeout) without running, and a submit whose "
                                      "estimated wait is already longer gets 503. At most the job TTL. Binary "
                                      "bodies and :predict use the Inferq-Max-Queue-S header."}

QUEUE_PLACE: Schema = {
    "type": "object", "description": "Where a queued job stands; absent once it has started.",
    "properties": {
        "position": {"type": "integer", "minimum": 0, "description": "Jobs that will start before this one (0: next)."},
        "eta_s": {"type": ["number", "null"],
                  "description": "Estimated seconds until it starts, from the measured throughput; null before any "
                                 "job of the model has ended recently."}},
    "required": ["position", "eta_s"]}

WEBHOOK: Schema = {
    "type": "object",
    "description": "Where to POST the job's events (Standard Webhooks signed).",
    "properties": {
        "url": {"type": "string", "format": "uri", "minLength": 1, "maxLength": MAX_URL_LENGTH,
                "description": "http or https URL with a host and no credentials."},
        "events": {"type": "array", "items": {"enum": list(EVENTS)}, "minItems": 1, "uniqueItems": True,
                   "default": ["completed"]},
    },
    "required": ["url"],
    "additionalProperties": False,
}

INSTANCES: Schema = {"type": "array", "minItems": 1,
             "description": "TF Serving's row format: one entry per example, shaped like the model input "
                            "without its batch axis; an object keyed by input name for multi-input models."}

INPUTS: Schema = {"type": ["object", "array"], "minProperties": 1, "minItems": 1,
          "description": "TF Serving's columnar format: {input name: [one value per example]}, or a "
                         "plain list for a single-input model."}

SUBMIT: Schema = {
    "type": "object",
    "description": "A job: its examples as rows ('instances') or columns ('inputs'), and an optional webhook.",
    "properties": {"instances": INSTANCES, "inputs": INPUTS, "webhook": WEBHOOK, "priority": PRIORITY,
                   "max_queue_s": MAX_QUEUE_S},
    "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
    "additionalProperties": False,
}

PREDICT: Schema = {
    "type": "object",
    "description": "A TF Serving REST predict request; answered with 'predictions' (rows) or "
                   "'outputs' (columns) after the job has run.",
    "properties": {"instances": INSTANCES, "inputs": INPUTS,
                   "signature_name": {"type": "string", "enum": ["serving_default"]}},
    "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
    "additionalProperties": False,
}

PREDICT_RESPONSE: Schema = {
    "type": "object",
    "properties": {"predictions": {"type": "array"}, "outputs": {"type": ["array", "object"]}},
}

PROBLEM: Schema = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}

NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}

JOB: Schema = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "model": {"type": "string"},
        "model_version": {"type": "string"},
        "status": {"enum": STATUSES},
        "created_at": {"type": "string", "format": "date-time"},
        "started_at": NULLABLE_TIME,
        "finished_at": NULLABLE_TIME,
        "predictions": {"type": "array", "description": "One entry per instance, when succeeded."},
        "error": {"type": "object", "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                  "required": ["type", "message"]},
        "timings": {"type": "object", "properties": {
            "queued_ms": {"type": "number"}, "batch_wait_ms": {"type": "number"},
            "inference_ms": {"type": "number"}, "batch_size": {"type": "integer"}}},
        "webhook": WEBHOOK,
        "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$",
                     "description": "The job's OpenTelemetry trace (the client's traceparent, or one the API started); "
                                    "present when tracing is on."},
        "priority": PRIORITY,
        "max_queue_s": MAX_QUEUE_S,
        "queue": QUEUE_PLACE,
    },
    "required": ["id", "model", "model_version", "status", "created_at", "started_at", "finished_at", "priority"],
}

TENSOR: Schema = {
    "type": "object",
    "properties": {"name": {"type": "string"},
                   "shape": {"type": "array", "items": {"type": ["integer", "null"]}},
                   "dtype": {"type": "string"}},
    "required": ["name", "shape", "dtype"],
}

MODEL: Schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "integer"}},
        "latest_version": {"type": "integer"},
        "inputs": {"type": "array", "items": TENSOR}, "outputs": {"type": "array", "items": TENSOR},
    },
    "required": ["name", "versions", "state"],
}

MODEL["properties"]["workers"] = {"type": "integer", "description": "Workers with a recent heartbeat."}
MODEL["properties"]["backlog"] = {"type": "integer", "description": "Jobs queued, claimed or running."}
MODEL["properties"]["oldest_queued_age_s"] = {"type": "number", "description": "Wait of the oldest queued job."}
MODEL["properties"]["jobs_per_second"] = {"type": "number", "description": "Jobs ended per second, last 30-40 s."}

STATES = ["loading", "ready", "failed", "retiring", "retired"]

MODEL_VERSION: Schema = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "version": {"type": "integer"},
                   "state": {"enum": STATES}, "reason": {"type": "string"},
                   "inputs": {"type": "array", "items": TENSOR}, "outputs": {"type": "array", "items": TENSOR},
                   "config": {"type": "object", "description": "batching, preprocessing, labels, format"}},
    "required": ["name", "version", "state"],
}

MODEL["properties"]["state"] = {"enum": STATES}
VERSION_STATE: Schema = {"type": "object",
                 "properties": {"version": {"type": "integer"}, "state": {"enum": STATES},
                                "reason": {"type": "string"}},
                 "required": ["version", "state"]}

MODEL["properties"]["version_states"] = {"type": "array", "items": VERSION_STATE}
MODEL["properties"]["model_version_status"] = {
    "type": "array", "description": "TF Serving's model status, for its clients."}

RELOAD: Schema = {"type": "object", "properties": {"workers_notified": {"type": "integer"}}}

MODEL_LIST: Schema = {"type": "object", "properties": {"models": {"type": "array", "items": MODEL}},
              "required": ["models"]}

DELIVERY: Schema = {
    "type": "object",
    "properties": {
        "event": {"enum": list(EVENTS)}, "webhook_id": {"type": "string"}, "attempt": {"type": "integer"},
        "url": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
        "status_code": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
        "duration_ms": {"type": "number"},
        "outcome": {"enum": ["delivered", "retrying", "failed", "denied", "dead"]},
    },
}

DELIVERIES: Schema = {"type": "object", "properties": {
    "job_id": {"type": "string"}, "webhook": {"oneOf": [WEBHOOK, {"type": "null"}]},
    "deliveries": {"type": "array", "items": DELIVERY}}}

REDELIVERY: Schema = {"type": "object", "properties": {
    "job_id": {"type": "string"}, "event": {"type": "string"}, "webhook_id": {"type": "string"}}}

STATS: Schema = {"type": "object", "properties": {
    "at": {"type": "number"}, "slot_s": {"type": "number"},
    "models": {"type": "object", "additionalProperties": {"type": "object"}},
    "history": {"type": "array", "items": {"type": "object"}},
    "webhooks": {"type": "object"}, "dead_webhooks": {"type": "array"}, "failed_jobs": {"type": "array"}},
    "required": ["at", "models", "history", "webhooks", "dead_webhooks", "failed_jobs"]}

HEALTH: Schema = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}

READY: Schema = {"type": "object", "properties": {"status": {"type": "string"},
                                          "models": {"type": "array", "items": {"type": "string"}}}}

COMPONENTS: dict[str, Schema] = {"Submit": SUBMIT, "Webhook": WEBHOOK, "Job": JOB, "QueuePlace": QUEUE_PLACE,
              "Problem": PROBLEM, "Tensor": TENSOR,
              "Model": MODEL, "Predict": PREDICT, "PredictResponse": PREDICT_RESPONSE, "Reload": RELOAD,
              "ModelVersion": MODEL_VERSION, "ModelList": MODEL_LIST, "Delivery": DELIVERY, "Deliveries": DELIVERIES,
              "Redelivery": REDELIVERY, "Stats": STATS, "Health": HEALTH, "Ready": READY}
"""Every schema, by the name the OpenAPI document gives it."""
