# The inference worker image: Celery with TensorFlow; models come from a mounted models/ folder.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    INFERQ_MODELS_DIR=/app/models

WORKDIR /app
COPY requirements/base.txt requirements/worker.txt requirements/
RUN pip install --no-cache-dir -r requirements/worker.txt \
    && useradd --system --uid 10001 --no-create-home inferq

COPY shared/ shared/
COPY workers/ workers/
COPY scripts/train_digits.py scripts/
COPY models/ models/

USER 10001
CMD ["python", "-m", "workers.inference"]
