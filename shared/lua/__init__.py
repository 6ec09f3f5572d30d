"""The Lua scripts that move jobs and webhook deliveries, one file each, read once at import.

Each runs atomically in Redis; ``outbox.lua`` is prepended to every script so the one
function that queues a webhook delivery is the same code wherever a delivery is queued.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def script(name: str) -> str:
    """The source of ``<name>.lua``, with the outbox functions it may call defined first."""
    return (HERE / "outbox.lua").read_text() + "\n" + (HERE / f"{name}.lua").read_text()
