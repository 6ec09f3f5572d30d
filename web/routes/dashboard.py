"""The live dashboard: a self-contained page, and the JSON it polls."""
from __future__ import annotations

import time
from pathlib import Path

from flask import Blueprint, Response

from web import stats
from web.auth import current_owner, is_operator
from web.routes.responses import json_response
from web.services import services

bp = Blueprint("dashboard", __name__)

PAGE = Path(__file__).resolve().parent.parent / "static" / "dashboard.html"


@bp.get("/dashboard")
def dashboard():
    """The page: no CDN, no external asset; it asks for an API key when the stats need one."""
    return Response(PAGE.read_bytes(), mimetype="text/html",
                    headers={"Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                                        "style-src 'unsafe-inline'; img-src 'self' data:"})


@bp.get("/v1/stats")
def get_stats():
    """Every model's figures now, the last 15 minutes of them, webhooks and recent failures."""
    figures = stats.with_history(services().redis, time.time())
    return json_response(figures if is_operator() else stats.for_owner(services().redis, figures, current_owner()))
