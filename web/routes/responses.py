"""JSON responses encoded with orjson, which also embeds stored predictions as-is."""
from __future__ import annotations

import orjson
from flask import Response


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    """Encode ``body`` with orjson (numpy arrays and raw fragments included)."""
    return Response(orjson.dumps(body), status=status, mimetype="application/json",
                    headers=headers)
