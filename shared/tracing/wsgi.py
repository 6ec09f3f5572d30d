"""The HTTP server span of every request the API serves, as WSGI middleware.

Plain WSGI, so ``shared`` stays free of web frameworks: the middleware continues a client's
``traceparent`` (or starts a trace), names the span after the route template the app matched
(``POST /v1/models/<name:model>/jobs``), and records the status code; a 5xx answer is an
error. The route is read when the app calls ``start_response``: Werkzeug keeps the request
(with its ``url_rule``) in ``environ["werkzeug.request"]`` until the app returns, so nothing is
matched twice. It is only installed while tracing is on.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind

from shared import tracing
from shared.tracing.context import record_failure

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


class _EnvironGetter(Getter[dict]):
    """Reads request headers out of a WSGI environ (``traceparent`` is ``HTTP_TRACEPARENT``)."""

    def get(self, carrier: dict, key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, carrier: dict) -> list[str]:
        return [name[5:].lower().replace("_", "-") for name in carrier if name.startswith("HTTP_")]


_GETTER = _EnvironGetter()


def trace_requests(app: Any) -> bool:
    """Start tracing the API process (``inferq-web``) when the environment asks, and then trace
    every request ``app`` (anything with a ``wsgi_app``, a Flask app here) serves. True when on."""
    if not tracing.init(tracing.Service.WEB):
        return False
    app.wsgi_app = TracedWsgi(app.wsgi_app)
    return True


class TracedWsgi:
    """Wraps a WSGI app in a SERVER span per request."""

    def __init__(self, wsgi_app: WsgiApp):
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        span = tracing.tracer().start_span(
            method, context=propagate.extract(environ, getter=_GETTER), kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": environ.get("PATH_INFO", "/"),
                        "url.scheme": environ.get("wsgi.url_scheme", "http")})

        def recording_start_response(status: str, headers: list, exc_info: Any = None):
            if span.is_recording():
                _describe(span, environ, method, status)
            return start_response(status, headers, exc_info)

        with trace.use_span(span, end_on_exit=True):
            return self.wsgi_app(environ, recording_start_response)


def _describe(span: Span, environ: dict, method: str, status: str) -> None:
    """Name the span after the matched route (none for a 404 or 405) and record the status code."""
    rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
    route = getattr(rule, "rule", None)
    if route:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    code = int(status.split(" ", 1)[0])
    span.set_attribute("http.response.status_code", code)
    if code >= 500:
        record_failure(span, str(code))
