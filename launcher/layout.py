"""Which worker process serves which models: the layout ``make run`` and the autoscaler share."""
from __future__ import annotations

from shared.settings import Settings


def worker_groups(settings: Settings, models: list[str]) -> list[list[str]]:
    """The models each worker program serves: ``INFERQ_WORKER_GROUPS``, then one per model."""
    groups, grouped = [], set()
    for spec in filter(None, (g.strip() for g in settings.worker_groups.split(","))):
        members = [m for m in spec.split("+") if m in models and m not in grouped]
        if members:
            groups.append(members)
            grouped.update(members)
    return groups + [[m] for m in models if m not in grouped]


PROGRAM_PREFIX = "worker-"
"""Worker programs are named ``worker-<model>[+<model>...]`` (model names cannot hold ``+``)."""


def program_name(models: list[str]) -> str:
    """The supervisord program running the workers for ``models``."""
    return PROGRAM_PREFIX + "+".join(models)


def models_of(program: str) -> list[str]:
    """The models a worker program serves, read back from its name."""
    return program.removeprefix(PROGRAM_PREFIX).split("+")


def programs(settings: Settings, models: list[str]) -> dict[str, list[str]]:
    """``program name -> models`` for every worker program."""
    return {program_name(group): group for group in worker_groups(settings, models)}
