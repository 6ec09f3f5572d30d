"""The Open Inference Protocol (v2, KServe / Triton) over HTTP, on top of the queue."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("v2", __name__)
