"""Baseline 1, the naive synchronous design: gunicorn sync workers, Flask, ``model.predict``
per request, the model loaded at import.

    PEER_MODELS_DIR=... gunicorn -w 2 -b 127.0.0.1:8301 bench.peers.naive_sync:app
"""
from __future__ import annotations

import orjson
from flask import Flask, Response, request

from bench.peers.common import decode, load_models

app = Flask(__name__)
MODELS = load_models()


@app.post("/predict/<model>")
def predict(model: str):
    batch = decode(request.get_data(), request.content_type or "")
    predictions = MODELS[model].predict(batch, verbose=0)
    return Response(orjson.dumps({"predictions": predictions.tolist()}), mimetype="application/json")
