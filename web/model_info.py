"""What a model looks like from outside: its versions, their states, signatures and load.

Shapes and dtypes come from the loaded models (workers publish them); states come from
the workers too, so a version that failed to load is listed with its reason.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from shared import backlog as backlogs
from shared import throughput
from shared.errors import NotFound
from shared.signatures import ModelSignature, ModelState
from web.services import services

TF_SERVING_STATES = {
    ModelState.LOADING: "LOADING", ModelState.READY: "AVAILABLE", ModelState.FAILED: "END",
    ModelState.RETIRING: "UNLOADING", ModelState.RETIRED: "END",
}
"""Our version states in TF Serving's ``model_version_status`` vocabulary."""


def loaded_models() -> list[str]:
    """Models some worker has loaded, read after a Redis ping (what both readiness probes ask)."""
    svc = services()
    svc.redis.ping()
    return [name for name in svc.catalog.names() if svc.catalog.versions(name)]


def all_models() -> list[dict]:
    """Every model some worker has tried to load, ready or not."""
    catalog = services().catalog
    models = [_describe(name, catalog.versions(name), catalog.states(name)) for name in catalog.names()]
    return [m for m in models if m is not None]


def one_model(model: str) -> dict:
    """One model with its versions' states, live workers and load; 404 when unknown."""
    catalog = services().catalog
    described = _describe(model, catalog.versions(model), catalog.states(model))
    if described is None:
        raise NotFound(f"model {model!r} is not served here")
    redis = services().redis
    described["workers"] = catalog.live_workers(model)
    described["backlog"] = backlogs.backlog(redis, model)
    described["oldest_queued_age_s"] = round(backlogs.oldest_queued_age_s(redis, model), 3)
    described["jobs_per_second"] = round(throughput.jobs_per_second(redis, model), 3)
    return described


def one_version(model: str, version: int) -> dict:
    """One version: its signature and config when ready, else its state and reason; 404 when unknown."""
    catalog = services().catalog
    found = catalog.version(model, version)
    state = catalog.states(model).get(version)
    if found is None and state is None:
        raise NotFound(f"model {model!r} has no version {version}")
    body: dict[str, Any] = {"name": model, "version": version}
    body.update(_state(state, ready=found is not None))
    if found is not None:
        body.update(_signature(found))
    return body


def _describe(name: str, versions: list[ModelSignature], states: dict[int, dict]) -> dict | None:
    if not versions and not states:
        return None
    ready = {v.version for v in versions}
    body: dict[str, Any] = {"name": name, "versions": sorted(ready)}
    if versions:
        latest = versions[-1]
        body["latest_version"] = latest.version
        body["state"] = ModelState.READY
        body.update(_signature(latest))
    else:
        newest = max(states)
        body["state"] = states[newest]["state"]
        if states[newest].get("reason"):
            body["reason"] = states[newest]["reason"]
    body["version_states"] = [
        {"version": version, **_state(states.get(version), ready=version in ready)}
        for version in sorted(set(states) | ready)
    ]
    body["model_version_status"] = [
        {"version": str(entry["version"]), "state": TF_SERVING_STATES.get(entry["state"], "END"),
         "status": {"error_code": "UNKNOWN" if entry["state"] == ModelState.FAILED else "OK",
                    "error_message": entry.get("reason", "")}}
        for entry in reversed(body["version_states"])
    ]
    return body


def _state(record: dict | None, ready: bool) -> dict:
    if ready:
        return {"state": ModelState.READY}
    if record is None:
        return {"state": ModelState.LOADING}
    state = {"state": record["state"]}
    if record.get("reason"):
        state["reason"] = record["reason"]
    return state


def _signature(signature: ModelSignature) -> dict:
    config = dict(signature.config)
    return {
        "inputs": [asdict(spec) for spec in signature.inputs],
        "outputs": [asdict(spec) for spec in signature.outputs],
        "description": config.pop("description", ""),
        "config": config,
    }
