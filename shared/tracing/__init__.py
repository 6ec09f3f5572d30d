"""OpenTelemetry tracing for every inferq process, configured by the standard ``OTEL_*`` environment.

Tracing is off unless the environment asks for export: ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` set, or ``OTEL_TRACES_EXPORTER`` naming an exporter other
than ``none``. Off, the SDK's tracing is never imported and every helper here returns before
it touches the OpenTelemetry API, so an untraced deployment pays one boolean check per job.
On, each process installs one SDK ``TracerProvider`` whose ``service.name`` is its role
(``Service``), whatever ``OTEL_SERVICE_NAME`` says: the three processes of one stack share one
environment, and a single name for all of them would make every trace unreadable.
``OTEL_RESOURCE_ATTRIBUTES``, the sampler (``OTEL_TRACES_SAMPLER``) and the exporter settings
are read by the SDK as usual.

A job's trace context travels as a W3C ``traceparent``: stored on the job record, in the
Celery message's headers, and sent with each webhook request (``shared.tracing.context``).
"""
from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

log = logging.getLogger(__name__)

SCOPE = "inferq"
"""The instrumentation scope every inferq span is created under."""

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class Service(enum.StrEnum):
    """The ``service.name`` of each kind of inferq process."""

    WEB = "inferq-web"
    WORKER = "inferq-worker"
    WEBHOOKS = "inferq-webhooks"


class _State:
    """The tracer of this process, None while tracing is off."""

    tracer: Tracer | None = None
    provider: TracerProvider | None = None


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (``none`` dropped); ``otlp`` when only an endpoint is set."""
    named = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if name.strip()]
    if named:
        return [name for name in named if name != "none"]
    return ["otlp"] if any(environ.get(name) for name in ENDPOINT_VARIABLES) else []


def wants_export(environ: Mapping[str, str]) -> bool:
    """True when the standard environment asks for spans to be exported (and the SDK is not disabled)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(exporter_names(environ))


def init(service: Service) -> bool:
    """Start tracing for this process when the environment asks for it; True when tracing is on.

    Call it in the process that does the work: after a fork, since a span processor's export
    thread does not survive one. The first provider installed stays (a second call is a no-op).
    """
    if _State.tracer is not None:
        return True
    if not wants_export(os.environ):
        return False
    from opentelemetry import trace

    from shared.tracing.setup import provider_for

    provider = provider_for(service, os.environ)
    trace.set_tracer_provider(provider)
    install(provider)
    log.info("tracing on: %s exporting to %s", service.value, ", ".join(exporter_names(os.environ)))
    return True


def install(provider: TracerProvider) -> None:
    """Trace with ``provider`` from now on (``init`` uses it; tests pass one with an in-memory exporter)."""
    _State.provider = provider
    _State.tracer = provider.get_tracer(SCOPE)


def uninstall() -> None:
    """Turn tracing off again in this process (tests)."""
    _State.provider = None
    _State.tracer = None


def enabled() -> bool:
    """True when this process records spans; every caller checks it before building one."""
    return _State.tracer is not None


def tracer() -> Tracer:
    """The tracer of this process; only called once ``enabled()`` said yes."""
    if _State.tracer is None:
        raise RuntimeError("tracing is off in this process")
    return _State.tracer


def flush(timeout_s: float = 2.0) -> None:
    """Export what is buffered now: before a process ends itself with ``os._exit``."""
    if _State.provider is not None:
        _State.provider.force_flush(int(timeout_s * 1000))
