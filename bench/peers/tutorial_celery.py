"""Baseline 2, the tutorial Celery design: Flask queues a task carrying the input, a Celery
worker calls ``model.predict`` per task and stores the result in Redis, and the client
polls ``/result/<id>`` (every 50 ms in the load generator) through ``AsyncResult``.

    PEER_REDIS_URL=redis://... gunicorn -w 2 -b 127.0.0.1:8302 bench.peers.tutorial_celery:app
    PEER_REDIS_URL=redis://... celery -A bench.peers.tutorial_celery worker -c 2
"""
from __future__ import annotations

import os

from celery import Celery
from flask import Flask, jsonify, request

from bench.peers.common import from_wire, load_models, to_wire

REDIS_URL = os.environ.get("PEER_REDIS_URL", "redis://127.0.0.1:6379/0")
celery = Celery("tutorial", broker=REDIS_URL, backend=REDIS_URL)
celery.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
app = Flask(__name__)
_models = None


@celery.task(name="tutorial.predict")
def predict_task(model: str, payload: str) -> list:
    global _models
    if _models is None:  # loaded once per worker process, on first use
        _models = load_models()
    return _models[model].predict(from_wire(payload), verbose=0).tolist()


@app.post("/predict/<model>")
def submit(model: str):
    result = predict_task.delay(model, to_wire(request.get_data(), request.content_type or ""))
    return jsonify({"task_id": result.id}), 202


@app.get("/result/<task_id>")
def result(task_id: str):
    outcome = celery.AsyncResult(task_id)
    body = {"state": outcome.state}
    if outcome.state == "SUCCESS":
        body["predictions"] = outcome.result
    return jsonify(body)
