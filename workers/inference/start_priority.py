"""Starting a worker beside busy ones without slowing them: load on spare CPU only.

Importing TensorFlow, then loading and warming a model, costs a few seconds of CPU. When other
workers of the same models are already serving (the autoscaler scaling up in a burst, or a
restart), that start competes with them for the cores, and on a small machine the jobs they
serve wait for it (``bench/autoscale.py`` measured it). Linux's ``SCHED_IDLE`` class runs a
thread only on a core that would otherwise idle, so the newcomer loads on spare cycles; once
its models are warm, every thread returns to the normal class. Spare cycles may not exist (a
saturated machine gives an idle-class thread almost nothing), so the class is left after
``IDLE_START_LIMIT_S`` at the latest: a start may be slowed, never starved.

Leaving ``SCHED_IDLE`` needs ``CAP_SYS_NICE`` (or an ``RLIMIT_NICE`` that allows nice 0), so a
process without it starts at normal priority rather than risk staying in the idle class.
"""
from __future__ import annotations

import logging
import os
import resource
import threading
import time

from shared import keys
from shared.settings import Settings
from shared.signatures import WORKER_ALIVE_S

log = logging.getLogger(__name__)

IDLE_START_LIMIT_S = 10.0
"""Longest time a starting worker stays in SCHED_IDLE before it competes like any process."""

CAP_SYS_NICE = 23
"""Bit of CAP_SYS_NICE in /proc/self/status's CapEff mask."""


def can_return_to_normal() -> bool:
    """Whether this process may leave SCHED_IDLE for SCHED_OTHER at its nice value again."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    try:
        with open("/proc/self/status") as status:
            caps = next(line.split()[1] for line in status if line.startswith("CapEff:"))
        if int(caps, 16) >> CAP_SYS_NICE & 1:
            return True
    except (OSError, StopIteration, ValueError):
        pass
    soft, _hard = resource.getrlimit(resource.RLIMIT_NICE)
    return soft == resource.RLIM_INFINITY or 20 - os.getpriority(os.PRIO_PROCESS, 0) <= soft


def others_serving(redis, models: list[str]) -> bool:
    """Whether a live worker (recent heartbeat) already serves any of ``models``."""
    cutoff = time.time() - WORKER_ALIVE_S
    return any(redis.zcount(keys.workers(model), cutoff, "+inf") > 0 for model in models)


def load_on_spare_cpu(settings: Settings, models: list[str]) -> bool:
    """Enter SCHED_IDLE when other workers of ``models`` are serving and leaving it is allowed.

    Call before TensorFlow is imported: threads inherit the class of the thread that creates
    them. Returns whether the class was changed.
    """
    if not can_return_to_normal():
        return False
    import redis

    from shared import redis_connection

    try:
        busy = others_serving(redis_connection.connect(settings, socket_timeout=1, connect_timeout=1), models)
    except redis.RedisError:
        return False
    if busy:
        enter_idle(IDLE_START_LIMIT_S)
    return busy


def enter_idle(limit_s: float) -> None:
    """This thread (and every thread it creates) in SCHED_IDLE, for ``limit_s`` at most."""
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    deadline = threading.Timer(limit_s, back_to_normal)  # needs microseconds of CPU, even idle
    deadline.daemon = True
    deadline.start()


def back_to_normal() -> None:
    """Every thread of this process back in the normal class (a no-op when none left it)."""
    if not hasattr(os, "SCHED_IDLE"):  # not Linux: nothing ever left it
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            if os.sched_getscheduler(int(tid)) == os.SCHED_IDLE:
                os.sched_setscheduler(int(tid), os.SCHED_OTHER, os.sched_param(0))
        except (ProcessLookupError, PermissionError) as exc:  # a thread that just ended, or no right
            log.debug("thread %s keeps its class: %s", tid, exc)
