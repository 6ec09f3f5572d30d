"""Model routes: what is served, with shapes and dtypes read from each loaded model."""
from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint

from shared.errors import NotFound
from shared.signatures import ModelSignature
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("models", __name__)


@bp.get("/v1/models")
def list_models():
    """Every model some worker has loaded, newest version's signature first."""
    catalog = services().catalog
    models = [_describe(catalog.versions(name)) for name in catalog.names()]
    return json_response({"models": [m for m in models if m is not None]})


@bp.get("/v1/models/<model>")
def get_model(model: str):
    """One model with its live worker count, or 404."""
    described = _describe(services().catalog.versions(model))
    if described is None:
        raise NotFound(f"model {model!r} is not served here")
    described["workers"] = services().catalog.live_workers(model)
    return json_response(described)


@bp.get("/v1/models/<model>/versions/<int:version>")
def get_version(model: str, version: int):
    """One loaded version's signature, or 404."""
    found = services().catalog.version(model, version)
    if found is None:
        raise NotFound(f"model {model!r} has no version {version} loaded")
    return json_response({"name": model, "version": version, "state": "ready",
                          "inputs": [asdict(spec) for spec in found.inputs],
                          "outputs": [asdict(spec) for spec in found.outputs]})


def _describe(versions: list[ModelSignature]) -> dict | None:
    if not versions:
        return None
    latest = versions[-1]
    return {
        "name": latest.name,
        "versions": [v.version for v in versions],
        "latest_version": latest.version,
        "inputs": [asdict(spec) for spec in latest.inputs],
        "outputs": [asdict(spec) for spec in latest.outputs],
    }
