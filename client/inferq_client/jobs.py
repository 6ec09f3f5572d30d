"""The job as the API returns it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})


@dataclass
class Job:
    """An inference job; ``raw`` keeps every field the server sent."""

    id: str
    model: str
    model_version: str
    status: str
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    predictions: list | None = None
    error: dict | None = None
    timings: dict | None = None
    priority: str = "normal"
    queue: dict | None = None
    """While queued: ``{"position": jobs that start first, "eta_s": seconds until it starts, or None}``."""
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        """True once the job can no longer change."""
        return self.status in TERMINAL

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        """Build from the API's JSON."""
        return cls(id=data["id"], model=data["model"], model_version=data["model_version"],
                   status=data["status"], created_at=data.get("created_at"),
                   started_at=data.get("started_at"), finished_at=data.get("finished_at"),
                   predictions=data.get("predictions"), error=data.get("error"),
                   timings=data.get("timings"), priority=data.get("priority", "normal"),
                   queue=data.get("queue"), raw=data)
