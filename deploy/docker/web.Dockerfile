# The API image: Flask under gunicorn. It carries no TensorFlow, so it starts in under a second.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INFERQ_WEB_BIND=0.0.0.0:8001

WORKDIR /app
COPY requirements/base.txt requirements/web.txt requirements/
RUN pip install --no-cache-dir -r requirements/web.txt \
    && useradd --system --uid 10001 --no-create-home inferq

COPY shared/ shared/
COPY web/ web/

USER 10001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8001/healthz', timeout=2).status != 200)"]
CMD ["gunicorn", "-c", "web/gunicorn.conf.py", "web.wsgi:app"]
