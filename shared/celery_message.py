"""Celery task messages (protocol 2, kombu's Redis envelope), written and read without kombu.

The API writes the message with ``LPUSH`` in the same Lua script that stores the job record: one round
trip per submit, and never a stored job without its message (or the reverse). The bytes
are exactly what ``send_task`` would have pushed, so a stock Celery worker consumes them;
``tests/integration`` proves that with a prefork worker.
"""
from __future__ import annotations

import base64
import os
import socket
import uuid
from dataclasses import dataclass

import orjson

from shared.tracing.context import current_traceparent

ORIGIN = f"inferq-web-{os.getpid()}@{socket.gethostname()}"
EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class MalformedMessage(ValueError):
    """A queue entry that is not a JSON Celery message carrying a job id."""


@dataclass(frozen=True)
class TaskMessage:
    """What a worker reads off a job's message: the job id, and the trace context it was published in."""

    job_id: str
    traceparent: str = ""
    """The ``traceparent`` header ('' for a message published untraced)."""
    queue: str = ""
    """The queue the message was routed to."""


def encode(task: str, job_id: str, queue: str, traceparent: str | None = None) -> bytes:
    """The Redis list entry for ``task(job_id)`` routed to ``queue``; the task id is the job id.

    The message carries ``traceparent`` (by default, the active span's) as one more header, as
    OpenTelemetry's Celery instrumentation does: Celery hands unknown headers to the task's
    request, so a stock worker consumes the message unchanged. Untraced, the header is left out.
    """
    context = current_traceparent() if traceparent is None else traceparent
    return encode_call(task, [job_id], queue, task_id=job_id, extra_headers={"traceparent": context} if context else None)


def encode_call(task: str, args: list, queue: str, task_id: str | None = None,
                extra_headers: dict[str, str] | None = None) -> bytes:
    """The Redis list entry for ``task(*args)`` routed to ``queue`` (JSON arguments only)."""
    job_id = task_id or str(uuid.uuid4())
    body = orjson.dumps([args, {}, EMBED])
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": task, "id": job_id, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": job_id, "parent_id": None,
            "argsrepr": repr(args), "kwargsrepr": "{}", "origin": ORIGIN,
            "ignore_result": True, "replaced_task_nesting": 0, "stamped_headers": None,
            "stamps": {}, **(extra_headers or {}),
        },
        "properties": {
            "correlation_id": job_id, "reply_to": "", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    }
    return orjson.dumps(envelope)


def job_id_of(raw: bytes, task: str) -> str:
    """The job id a message carries; ``MalformedMessage`` for anything else (pickle included)."""
    return decode(raw, task).job_id


def decode(raw: bytes, task: str) -> TaskMessage:
    """The job id and trace context a message carries; ``MalformedMessage`` for anything else."""
    try:
        envelope = orjson.loads(raw)
        if envelope.get("content-type") != "application/json":
            raise MalformedMessage(f"content-type {envelope.get('content-type')!r} is not accepted")
        headers = envelope.get("headers", {})
        if headers.get("task") != task:
            raise MalformedMessage(f"unexpected task {headers.get('task')!r}")
        args = orjson.loads(base64.b64decode(envelope["body"]))[0]
        queue = (envelope.get("properties", {}).get("delivery_info") or {}).get("routing_key") or ""
    except MalformedMessage:
        raise
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedMessage(f"undecodable message: {exc}") from None
    if not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], str)):
        raise MalformedMessage("the message does not carry exactly one job id")
    traceparent = headers.get("traceparent")
    return TaskMessage(args[0], traceparent if isinstance(traceparent, str) else "", str(queue))
