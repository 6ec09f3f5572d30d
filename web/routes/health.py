"""Probes and metrics: liveness, readiness (Redis plus known models), Prometheus text."""
from __future__ import annotations

from flask import Blueprint, Response, request

from shared import replication
from shared.errors import NotFound, Unavailable
from web import metrics, model_info, openapi
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive and serving requests."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready when Redis answers, at least one model has been loaded by a worker, and as many
    replicas are in sync as a submit must wait for (else every submit would be a 503)."""
    models = model_info.loaded_models()
    if not models:
        raise Unavailable("no model has been loaded by a worker yet", retry_after=2)
    required = services().settings.redis_min_replicas
    if required > 0:
        online = replication.online_replicas(services().redis)
        if online < required:
            raise Unavailable(f"{online} of the {required} required Redis replica(s) are in sync", retry_after=2,
                              replicas_required=required, replicas_online=online)
    return json_response({"status": "ready", "models": models})


@bp.get("/metrics")
def prometheus_metrics():
    """Prometheus text exposition: queue depth, jobs by status, latency histogram."""
    if services().settings.metrics_on_ops_only and request.headers.get("X-Inferq-Listener") != "ops":
        raise NotFound("/metrics is served on the operations listener only (INFERQ_OPS_LISTEN)")
    body = metrics.render(services().redis)
    return Response(body, mimetype="text/plain", content_type="text/plain; version=0.0.4; charset=utf-8")


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document of this API, with examples fitting a model served here."""
    catalog = services().catalog
    served = [latest for latest in (catalog.latest(name) for name in catalog.names()) if latest is not None]
    return json_response(openapi.document(openapi.example_for(served[0]) if served else None))


@bp.get("/docs")
def openapi_page():
    """The OpenAPI document as a readable page."""
    return Response(openapi.page(openapi.document()), mimetype="text/html")
