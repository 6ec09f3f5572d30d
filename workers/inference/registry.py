"""The model repository on disk, and the versions one worker process holds from it.

    models/<name>/<version>/{model.keras | saved_model.pb | *.h5}[, inferq.yaml]

``sync`` is the whole life cycle, run at start and then on every rescan: load each new
version beside the old ones, warm it up, publish it (web routes new jobs to the newest
published version), withdraw versions beyond the ``keep_versions`` newest, and unload a
withdrawn version once every job already routed to it has ended. A version that cannot be
loaded, or whose inputs differ from the serving version's, is refused and reported; what
was serving keeps serving.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shared.errors import InferqError
from shared.settings import Settings
from shared.signatures import ModelCatalog, ModelState
from workers.inference.batching import BatchPolicy
from workers.inference.model_config import ModelConfig, load_config
from workers.inference.model_formats import find_artifact

log = logging.getLogger(__name__)

VERSION_DIR = re.compile(r"^[1-9][0-9]{0,17}$")
"""A version directory's name: a positive integer."""

AWAIT_LOAD_S = 120.0
"""Longest a job waits for a version this worker is about to load (another worker was faster)."""


class ModelNotLoaded(InferqError):
    """A job asked for a model version this worker does not hold."""


def discover(models_dir: str | Path, names: list[str] | None = None) -> dict[str, list[tuple[int, Path]]]:
    """Every ``name -> [(version, version_dir)]`` holding a model file (versions ascending)."""
    root = Path(models_dir)
    found: dict[str, list[tuple[int, Path]]] = {}
    if not root.is_dir():
        return found
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if names and model_dir.name not in names:
            continue
        versions = sorted(
            (int(v.name), v) for v in model_dir.iterdir()
            if v.is_dir() and VERSION_DIR.match(v.name) and find_artifact(v) is not None
        )
        if versions:
            found[model_dir.name] = versions
    return found


def last_change(version_dir: Path) -> float:
    """Newest modification time of anything in a version directory (a copy may be running)."""
    times = [version_dir.stat().st_mtime]
    times.extend(p.stat().st_mtime for p in version_dir.rglob("*"))
    return max(times)


@dataclass
class Refusal:
    """A version this worker would not serve, and the state of its files when it tried."""

    reason: str
    stamp: float


class ModelRegistry:
    """The compiled models one worker process holds, keyed by name and version."""

    def __init__(self, settings: Settings | None = None, catalog: ModelCatalog | None = None,
                 names: list[str] | None = None):
        self.settings = settings or Settings()
        self.catalog = catalog
        self.names = names or None
        self._models = {}
        self._configs: dict[tuple[str, int], ModelConfig] = {}
        self._refused: dict[tuple[str, int], Refusal] = {}
        self._retiring: dict[tuple[str, int], float] = {}
        self._on_disk: dict[str, list[int]] = {}
        self._sync_lock = threading.Lock()
        self._synced_once = False

    # -- what consumers ask -------------------------------------------------------------

    def get(self, name: str, version: int):
        """The compiled model, or ``ModelNotLoaded``."""
        try:
            return self._models[(name, version)]
        except KeyError:
            raise ModelNotLoaded(f"model {name} version {version} is not loaded by this worker") from None

    def get_or_wait(self, name: str, version: int, stopping: threading.Event | None = None):
        """Like ``get``, but waits while this worker is about to load ``version``.

        With several workers per model, web may route a job to a version one worker has
        published before another has finished loading it; that job waits, it never fails.
        """
        deadline = time.monotonic() + AWAIT_LOAD_S
        while (name, version) not in self._models and self.expects(name, version):
            if time.monotonic() > deadline or (stopping is not None and stopping.is_set()):
                break
            time.sleep(0.1)
        return self.get(name, version)

    def expects(self, name: str, version: int) -> bool:
        """True when ``version`` is on disk, not refused, and newer than what is loaded."""
        loaded = [v for (n, v) in self._models if n == name]
        return (version in self._on_disk.get(name, ()) and (name, version) not in self._refused
                and (not loaded or version > max(loaded)))

    def batch_policy(self, name: str) -> BatchPolicy:
        """The batching policy of the newest loaded version of ``name``."""
        newest = max(version for model, version in self._configs if model == name)
        return self._configs[(name, newest)].batching

    def time_limit(self, name: str) -> float:
        """Seconds one batch of ``name`` may run (the newest loaded version's setting)."""
        versions = [v for (n, v) in self._configs if n == name]
        if not versions:
            return self.settings.job_time_limit_s
        return self._configs[(name, max(versions))].time_limit_s

    def loaded(self) -> list[tuple[str, int]]:
        """``(name, version)`` of every model held."""
        return sorted(self._models)

    def served_names(self) -> list[str]:
        """Models with at least one version loaded."""
        return sorted({name for name, _ in self._models})

    # -- the life cycle -----------------------------------------------------------------

    def sync(self) -> None:
        """Bring what this worker holds in line with the repository (see the module doc)."""
        with self._sync_lock:
            found = discover(self.settings.models_dir, self.names)
            self._on_disk = {name: [v for v, _ in versions] for name, versions in found.items()}
            for name, versions in found.items():
                self._sync_model(name, versions)
            for name in {n for n, _ in self._models} - set(found):
                self._sync_model(name, [])
            if not self._synced_once:
                self._forget_stale(found)
            self._unload_drained()
            self._synced_once = True

    def _forget_stale(self, found: dict) -> None:
        """Withdraw routes an earlier life of the workers published and no one holds now."""
        if self.catalog is None:
            return
        for name in found:
            for signature in self.catalog.versions(name):
                key = (name, signature.version)
                if key in self._models:
                    continue
                refused = self._refused.get(key)
                if refused is not None:
                    self.catalog.withdraw(name, signature.version, ModelState.FAILED, refused.reason)
                else:
                    self.catalog.withdraw(name, signature.version, ModelState.RETIRED,
                                          "not in the repository, or not among the newest kept")

    def _sync_model(self, name: str, versions: list[tuple[int, Path]]) -> None:
        keep = self._keep_count(name)
        kept: list[int] = []
        for version, directory in sorted(versions, reverse=True):
            if len(kept) >= keep:
                break
            if (name, version) in self._models:
                kept.append(version)
            elif self._try_load(name, version, directory):
                kept.append(version)
                keep = self._keep_count(name)
        for (model, version) in list(self._models):
            if model == name and version not in kept and (model, version) not in self._retiring:
                self._withdraw(name, version, "removed from the repository"
                               if version not in self._on_disk.get(name, ()) else f"keeping the newest {keep}")

    def _keep_count(self, name: str) -> int:
        versions = [v for (n, v) in self._configs if n == name]
        return self._configs[(name, max(versions))].keep_versions if versions else self.settings.keep_versions

    def _try_load(self, name: str, version: int, directory: Path) -> bool:
        """Load, check, warm up and publish one version; False (reported) when refused."""
        stamp = last_change(directory)
        refused = self._refused.get((name, version))
        if refused is not None and refused.stamp == stamp:
            return False
        if self._synced_once and time.time() - stamp < self.settings.reload_settle_s:
            return False  # still being copied in; the next scan takes it
        self._report(name, version, ModelState.LOADING)
        try:
            compiled, config = self._build(name, version, directory)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:2000]
            log.error("refused model %s version %s: %s", name, version, reason)
            self._refused[(name, version)] = Refusal(reason, stamp)
            self._report(name, version, ModelState.FAILED, reason)
            return False
        self._refused.pop((name, version), None)
        self._models[(name, version)] = compiled
        self._configs[(name, version)] = config
        if self.catalog is not None:
            self.catalog.publish(compiled.signature)
        log.info("loaded model %s version %s (%s)", name, version, compiled.signature.config["format"])
        return True

    def _build(self, name: str, version: int, directory: Path):
        from workers.inference import model_formats
        from workers.inference.compiled import CompiledModel

        config = load_config(directory, self.settings)
        compiled = CompiledModel(name, version, model_formats.load(directory), config)
        serving = [v for (n, v) in self._models if n == name]
        if serving and not config.allow_signature_change:
            current = self._models[(name, max(serving))].signature
            if current.inputs != compiled.signature.inputs:
                raise ValueError(
                    f"its inputs {_describe(compiled.signature.inputs)} differ from version "
                    f"{current.version}'s {_describe(current.inputs)}; set allow_signature_change: "
                    "true in inferq.yaml to roll out a new signature")
        compiled.warm_up(config.batching.max_batch_size)
        return compiled, config

    def _withdraw(self, name: str, version: int, why: str) -> None:
        log.info("withdrawing model %s version %s (%s); it unloads once its jobs have ended",
                 name, version, why)
        self._retiring[(name, version)] = time.monotonic()
        if self.catalog is not None:
            self.catalog.withdraw(name, version, ModelState.RETIRING, why)

    def _unload_drained(self) -> None:
        """Unload withdrawn versions whose routed jobs have all ended (or that waited too long)."""
        for (name, version), since in list(self._retiring.items()):
            waited = time.monotonic() - since
            if waited < self.settings.retire_grace_s:
                continue
            pending = self.catalog.pending(name).get(version, 0) if self.catalog is not None else 0
            if pending > 0 and waited < self.settings.retire_max_wait_s:
                continue
            if pending > 0:
                log.warning("unloading model %s version %s with %d job(s) still routed to it",
                            name, version, pending)
            self._models.pop((name, version), None)
            self._configs.pop((name, version), None)
            del self._retiring[(name, version)]
            self._report(name, version, ModelState.RETIRED)
            log.info("unloaded model %s version %s", name, version)

    def _report(self, name: str, version: int, state: str, reason: str = "") -> None:
        if self.catalog is not None:
            self.catalog.set_state(name, version, state, reason)


def _describe(specs) -> str:
    return ", ".join(f"{s.name}{tuple(s.shape)}:{s.dtype}" for s in specs)
