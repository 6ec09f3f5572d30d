"""The local autoscaler: worker processes per model follow the backlog, down to zero.

    python -m launcher.autoscaler      (``make run`` runs it under supervisord)

Every ``INFERQ_AUTOSCALE_INTERVAL_S`` it reads each worker program's backlog (see
``shared.backlog``) and sets the number of running processes to

    desired = clamp(ceil(backlog / target_backlog), min, max)

through supervisord's own XML-RPC interface: the worker programs are declared with
``numprocs = max`` and ``autostart = false``, and this starts or stops their processes. No
second process supervisor. Scaling up waits ``up_cooldown_s`` after the last change, except
from zero: the first job wakes a worker at once. Scaling down waits ``down_cooldown_s`` and
stops the newest processes with SIGTERM, on which a worker finishes the batch in hand and
exits; it holds nothing else, so no job is lost and none waits for a timeout. Every
decision is one JSON log line with its inputs and reason.
"""
from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from launcher.layout import PROGRAM_PREFIX, models_of
from shared import backlog as backlogs
from shared import keys, redis_connection
from shared.settings import Settings
from shared.signatures import WORKER_ALIVE_S

log = logging.getLogger("inferq.autoscaler")

@dataclass(frozen=True)
class Policy:
    """Bounds and pace of one worker program's scaling."""

    min: int = 1
    max: int = 2
    target_backlog: int = 32
    up_cooldown_s: float = 5.0
    down_cooldown_s: float = 60.0

    def desired(self, backlog: int, remote: int = 0) -> int:
        """``clamp(ceil(backlog / target_backlog) - remote, min, max)``: ``remote`` workers on
        other hosts already carry part of the backlog."""
        return max(self.min, min(self.max, math.ceil(backlog / self.target_backlog) - remote))


def policies(settings: Settings, programs: dict[str, list[str]]) -> dict[str, Policy]:
    """Each worker program's policy: the ``INFERQ_AUTOSCALE_*`` defaults, then overrides.

    ``INFERQ_AUTOSCALE_OVERRIDES="digits:min=0,max=4;big:target_backlog=4"`` names models;
    a program serving several models takes the overrides of any of them.
    """
    base = Policy(settings.autoscale_min, settings.autoscale_max, settings.autoscale_target_backlog,
                  settings.autoscale_up_cooldown_s, settings.autoscale_down_cooldown_s)
    overrides = parse_overrides(settings.autoscale_overrides)
    result = {}
    for program, models in programs.items():
        policy = base
        for model in models:
            if model in overrides:
                policy = replace(policy, **overrides[model])
        if not 0 <= policy.min <= policy.max or policy.target_backlog < 1:
            raise ValueError(f"autoscaling {program}: need 0 <= min <= max and target_backlog >= 1, got {policy}")
        result[program] = policy
    return result


def parse_overrides(text: str) -> dict[str, dict]:
    """``model:key=value,...;model2:...`` -> ``{model: {key: value}}``; ValueError when malformed."""
    kinds = {"min": int, "max": int, "target_backlog": int, "up_cooldown_s": float, "down_cooldown_s": float}
    result: dict[str, dict] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        model, _, settings = part.partition(":")
        values = {}
        for item in filter(None, (s.strip() for s in settings.split(","))):
            key, _, raw = item.partition("=")
            if key not in kinds:
                raise ValueError(f"INFERQ_AUTOSCALE_OVERRIDES: unknown setting {key!r} for {model!r}")
            values[key] = kinds[key](raw)
        result[model.strip()] = values
    return result


@dataclass
class Decision:
    """What the autoscaler decided for one program in one round, and why."""

    program: str
    backlog: int
    current: int
    desired: int
    target: int
    reason: str
    remote: int = 0


class Pacer:
    """Applies a policy's cooldowns to one program's raw desired count.

    Scaling down follows the highest count wanted over the whole down cooldown (Kubernetes'
    HPA does the same with its stabilization window): a backlog that touches zero between two
    jobs of a steady stream must not send the workers away, only one that stays empty.
    """

    def __init__(self, policy: Policy):
        self.policy = policy
        self.last_change = -math.inf
        self.history: list[tuple[float, int]] = []
        self.watching_since: float | None = None

    def decide(self, program: str, backlog: int, current: int, now: float, remote: int = 0) -> Decision:
        """``remote``: live workers of these models on other hosts, which carry part of the backlog."""
        desired = self.policy.desired(backlog, remote)
        self.history = [(t, d) for t, d in self.history if now - t < self.policy.down_cooldown_s]
        self.history.append((now, desired))
        if self.watching_since is None:
            self.watching_since = now
        since = now - self.last_change
        observed = now - self.watching_since
        if desired > current:
            if current == 0:
                target = desired
                reason = "wake from zero (no cooldown)" if backlog else "start the minimum"
            elif since >= self.policy.up_cooldown_s:
                target, reason = desired, "backlog above target"
            else:
                target, reason = current, f"up cooldown ({self.policy.up_cooldown_s - since:.1f} s left)"
        elif desired < current:
            recent = max(d for _, d in self.history)
            settled = since >= self.policy.down_cooldown_s and observed >= self.policy.down_cooldown_s
            if settled and recent < current:
                target, reason = recent, "backlog below target"
            elif settled:
                target, reason = current, "backlog below target only briefly"
            else:
                target, reason = current, f"down cooldown ({self.policy.down_cooldown_s - since:.1f} s left)"
        else:
            target, reason = current, "steady"
        if target != current:
            self.last_change = now
        return Decision(program, backlog, current, desired, target, reason, remote)


class SupervisorPool:
    """Starts and stops a worker program's processes through supervisord's XML-RPC API."""

    RUNNING = {"RUNNING", "STARTING", "BACKOFF"}

    def __init__(self, server_url: str):
        import xmlrpc.client

        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, serverurl=server_url)
        self.rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def processes(self, program: str) -> list[dict]:
        """The program's processes, numbered order."""
        found = [p for p in self.rpc.getAllProcessInfo() if p["group"] == program]
        return sorted(found, key=lambda p: p["name"])

    def running(self, program: str) -> int:
        return sum(1 for p in self.processes(program) if p["statename"] in self.RUNNING)

    def worker_programs(self) -> set[str]:
        """Every worker program supervisord knows, including those added since it started."""
        return {p["group"] for p in self.rpc.getAllProcessInfo() if p["group"].startswith(PROGRAM_PREFIX)}

    def scale(self, program: str, target: int) -> None:
        """Start the lowest-numbered stopped processes, or stop the highest-numbered running ones."""
        processes = self.processes(program)
        running = [p for p in processes if p["statename"] in self.RUNNING]
        if target > len(running):
            idle = [p for p in processes if p["statename"] not in self.RUNNING and p["statename"] != "STOPPING"]
            for process in idle[:target - len(running)]:
                self.rpc.startProcess(f"{program}:{process['name']}", False)
        else:
            for process in list(reversed(running))[:len(running) - target]:
                self.rpc.stopProcess(f"{program}:{process['name']}", False)


class Autoscaler:
    """One loop over every autoscaled worker program."""

    def _remote_workers(self, program: str, models: list[str]) -> int:
        """Live workers (recent heartbeat) of these models that this host's program does not run.

        Workers on other machines (Celery spreads over hosts through Redis) share the backlog,
        so this host adds only what they do not cover.
        """
        cutoff = time.time() - WORKER_ALIVE_S
        counts = []
        for model in models:
            alive = [w.decode() for w in self.redis.zrangebyscore(keys.workers(model), cutoff, "+inf")]
            counts.append(sum(1 for worker in alive if not worker.startswith(f"{program}-")
                              and not worker.startswith(f"{program}@")))
        return min(counts) if counts else 0

    def _published(self, models: list[str]) -> bool:
        return all(self.redis.hlen(keys.model(model)) > 0 for model in models)

    def __init__(self, redis, pool, programs: dict[str, list[str]], policies: dict[str, Policy],
                 policies_for: Callable[[dict[str, list[str]]], dict[str, Policy]] | None = None):
        """``policies_for``, when given, lets the loop adopt worker programs added later (a new
        model dropped into the repository) with the policies it returns for them."""
        self.redis = redis
        self.pool = pool
        self.programs = dict(programs)
        self.pacers = {program: Pacer(policies[program]) for program in programs}
        self.policies_for = policies_for
        self._last_logged: dict[str, tuple[int, str]] = {}

    def adopt_new_programs(self) -> dict[str, list[str]]:
        """Start scaling the worker programs supervisord gained since the last round."""
        if self.policies_for is None:
            return {}
        new = {program: models_of(program) for program in sorted(self.pool.worker_programs())
               if program not in self.programs}
        if new:
            for program, policy in self.policies_for(new).items():
                self.pacers[program] = Pacer(policy)
            self.programs.update(new)
            log.info(json.dumps({"event": "autoscaler-adopted", "programs": new}))
        return new

    def round(self, now: float | None = None) -> list[Decision]:
        """Read, decide, act and log once for every program."""
        now = time.monotonic() if now is None else now
        self.adopt_new_programs()
        decisions = []
        for program, models in self.programs.items():
            backlog = sum(backlogs.backlog(self.redis, model) for model in models)
            current = self.pool.running(program)
            remote = self._remote_workers(program, models)
            decision = self.pacers[program].decide(program, backlog, current, now, remote)
            if decision.target == 0 and not self._published(models):
                # The API routes and validates with signatures workers publish: a model no
                # worker has loaded yet keeps one until it has, then may scale to zero.
                decision.target, decision.reason = 1, "load once to publish the model's signature"
                self.pacers[program].last_change = now
            if decision.target != current:
                self.pool.scale(program, decision.target)
            self.redis.hset(keys.AUTOSCALER_DESIRED, program, decision.target)
            # One line per decision: a change, or a new reason to hold (not every countdown tick).
            reason = decision.reason.split(" (")[0]
            changed = (remote, reason) != self._last_logged.get(program)
            self._last_logged[program] = (remote, reason)
            if decision.target != current or changed:
                log.info(json.dumps({"event": "autoscale", "program": program, "models": models,
                                     "backlog": backlog, "current": current, "remote": remote,
                                     "desired": decision.desired, "target": decision.target,
                                     "reason": decision.reason}))
            decisions.append(decision)
        return decisions


def main() -> int:
    """Run the loop until SIGTERM (supervisord stops it like any program)."""
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    pool = SupervisorPool(settings.supervisor_url)
    # supervisord's worker programs are the truth: ``make run`` adds one when a new model
    # name appears in the repository, and the loop adopts it.
    programs = {program: models_of(program) for program in sorted(pool.worker_programs())}
    chosen = policies(settings, programs)
    scaler = Autoscaler(redis_connection.connect(settings), pool, programs, chosen,
                        policies_for=lambda new: policies(settings, new))
    log.info(json.dumps({"event": "autoscaler-started", "programs": programs,
                         "policies": {program: vars(policy) for program, policy in chosen.items()}}))
    while True:
        try:
            scaler.round()
        except Exception:
            log.exception("autoscaling round failed; retrying")
        time.sleep(settings.autoscale_interval_s)


if __name__ == "__main__":
    sys.exit(main())
