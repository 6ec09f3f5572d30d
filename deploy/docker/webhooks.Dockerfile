# The webhook worker image: Celery with a thread pool, base requirements only. It carries no
# TensorFlow and no web code, so a slow receiver never competes with inference for memory.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /app
COPY requirements/base.txt requirements/
RUN pip install --no-cache-dir -r requirements/base.txt \
    && useradd --system --uid 10001 --no-create-home inferq

COPY shared/ shared/
COPY workers/__init__.py workers/celery_config.py workers/
COPY workers/webhooks/ workers/webhooks/

USER 10001
# This container's own worker answers Celery's remote-control ping: connected and consuming.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import socket, sys; from shared.settings import Settings; from workers.webhooks.app import make_app; me = '@' + socket.gethostname(); r = make_app(Settings.from_env()).control.ping(timeout=5); sys.exit(0 if any(n.startswith('webhooks-') and n.endswith(me) for x in r for n in x) else 1)"]
CMD ["python", "-m", "workers.webhooks"]
