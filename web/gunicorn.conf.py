"""gunicorn settings, read from the same INFERQ_* environment as the app.

gevent workers by default: a long-poll holds a greenlet, not a thread, so thousands of
clients can wait at once (bench/RESULTS.md compares gthread). nginx keeps the access log.
"""
from shared.settings import Settings
from web import gunicorn_errors

_settings = Settings.from_env()
gunicorn_errors.install()  # its own error pages are problem+json too, never HTML

bind = _settings.web_bind
workers = _settings.web_workers
worker_class = _settings.web_worker_class
threads = _settings.web_threads
worker_connections = _settings.web_connections
# Long-polls last up to the wait cap; give them room before the arbiter kills a worker.
timeout = int(_settings.wait_cap_s) + 30
graceful_timeout = 30
keepalive = 75
# Bounded request line and headers; bodies are bounded by nginx and Flask. nginx in front
# bounds the headers by size (large_client_header_buffers); this count stays above what fits.
limit_request_line = 8190
limit_request_fields = 1000
accesslog = "-" if _settings.web_access_log else None
errorlog = "-"
loglevel = _settings.log_level
proc_name = "inferq-web"


def post_worker_init(worker):
    """Each web process samples the dashboard's history (web/stats.py; one write per slot)."""
    from web.stats import start_sampler

    start_sampler(worker.wsgi.extensions["inferq"].redis)
