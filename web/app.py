"""The Flask application factory: gunicorn loads ``web.wsgi:app``, tests call ``create_app``."""
from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from shared.settings import Settings
from shared.tracing.wsgi import trace_requests
from web import auth, problems
from web.routes import dashboard, deliveries, health, jobs, models, tfserving, v2
from web.services import build_services


class ModelNameConverter(BaseConverter):
    """A path segment without ':', so ``/v1/models/digits:predict`` never reads as a model name."""

    regex = r"[^/:]+"


def create_app(settings: Settings | None = None, redis_client=None) -> Flask:
    """Build the API. Tests pass their own settings or Redis client."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.url_map.converters["name"] = ModelNameConverter
    app.url_map.merge_slashes = False  # werkzeug would answer ``//v1//models`` with an HTML 308 redirect
    app.url_map.strict_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # nginx sits in front: trust one hop of X-Forwarded-* headers.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.extensions["inferq"] = build_services(settings, redis_client)
    problems.init_app(app)
    auth.init_app(app, auth.ApiKeys.from_settings(settings))
    for blueprint in (jobs.bp, deliveries.bp, models.bp, tfserving.bp, v2.bp, health.bp, dashboard.bp):
        app.register_blueprint(blueprint)
    trace_requests(app)  # only when the OTEL_* environment asks for export (docs/tracing.md)
    return app
