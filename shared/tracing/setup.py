"""Building the SDK's tracer provider from the standard environment, loaded only when tracing is on.

The SDK reads most of the environment itself: the sampler (``OTEL_TRACES_SAMPLER`` and
``OTEL_TRACES_SAMPLER_ARG``), ``OTEL_RESOURCE_ATTRIBUTES``, the OTLP endpoint, headers,
timeout, compression and certificates, and the batch processor's ``OTEL_BSP_*`` limits. What
is decided here is the resource's ``service.name`` (the process's role) and which exporters
``OTEL_TRACES_EXPORTER`` names: ``otlp`` is OTLP over HTTP/protobuf, ``console`` prints spans,
and any other name is looked up among the installed ``opentelemetry_traces_exporter`` entry points.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from shared.tracing import Service, exporter_names

log = logging.getLogger(__name__)

OTLP_NAMES = ("otlp", "otlp_proto_http")
"""Names of the OTLP exporter inferq ships (HTTP/protobuf)."""

PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


def resource_for(service: Service) -> Resource:
    """The SDK's resource (``OTEL_RESOURCE_ATTRIBUTES`` merged in) with ``service.name`` set to the role."""
    return Resource.create({SERVICE_NAME: service.value})


def provider_for(service: Service, environ: Mapping[str, str]) -> TracerProvider:
    """A tracer provider exporting through a batch processor per named exporter."""
    provider = TracerProvider(resource=resource_for(service))
    for name in exporter_names(environ):
        exporter = exporter_named(name, environ)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def exporter_named(name: str, environ: Mapping[str, str]) -> SpanExporter | None:
    """The exporter ``OTEL_TRACES_EXPORTER`` calls ``name``; None (logged) when none is installed."""
    if name in OTLP_NAMES:
        protocol = next((environ[v] for v in PROTOCOL_VARIABLES if environ.get(v)), "http/protobuf")
        if protocol != "http/protobuf":
            log.warning("OTLP protocol %r is not shipped with inferq: exporting over http/protobuf", protocol)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.util._importlib_metadata import entry_points

    found = list(entry_points(group="opentelemetry_traces_exporter", name=name))
    if not found:
        log.error("OTEL_TRACES_EXPORTER names %r, which is not installed; its spans are dropped", name)
        return None
    return found[0].load()()
