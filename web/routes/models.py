"""Model routes: what is served, each version's state, and the repository reload trigger."""
from __future__ import annotations

from flask import Blueprint

from shared import keys
from web import model_info
from web.auth import require_operator
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("models", __name__)


@bp.get("/v1/models")
def list_models():
    """Every model some worker has tried to load, ready or not."""
    return json_response({"models": model_info.all_models()})


@bp.post("/v1/models:reload")
def reload_models():
    """Ask every worker to rescan the model repository now (they also poll on their own); operators only."""
    require_operator()
    notified = services().redis.publish(keys.MODELS_RELOAD_CHANNEL, b"reload")
    return json_response({"workers_notified": notified}, status=202)


@bp.get("/v1/models/<name:model>")
def get_model(model: str):
    """One model with its versions' states and live worker count, or 404."""
    return json_response(model_info.one_model(model))


@bp.get("/v1/models/<name:model>/versions/<int:version>")
def get_version(model: str, version: int):
    """One version: its signature and config when ready, else its state and reason."""
    return json_response(model_info.one_version(model, version))
