"""supervisord's configuration for the stack: one program per process, and the programs that
``make run`` adds for model names dropped into the repository while it runs."""
from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from launcher import autoscaler
from launcher.configs import open_files_limit
from launcher.layout import programs as worker_programs
from launcher.redis_set import LocalRedis
from shared.settings import Settings
from workers.inference.registry import discover, last_change

ROOT = Path(__file__).resolve().parent.parent


def write_supervisor_conf(settings: Settings, data: Path, layout: dict[str, list[str]], nginx: str | None,
                          redis_server: str | None, local_redis: LocalRedis | None = None) -> Path:
    """One program per process: redis (and its replicas and Sentinels), a worker program per model
    (or group, ``layout``), gunicorn, nginx.

    ``nginx`` and ``redis_server`` are the binaries to run, None for a server not started here;
    ``local_redis`` holds the configs of the Redis nodes started here.
    """
    bin_dir = Path(sys.executable).parent
    programs = []
    if redis_server is not None and local_redis is not None:
        for name, conf in local_redis.nodes.items():
            programs.append(_program(name, f"{redis_server} {conf}", 10))
        # Sentinels stop first (supervisord stops the highest priority first): a stopping
        # stack must not look to them like a primary to fail over.
        for name, conf in local_redis.sentinels.items():
            programs.append(_program(name, f"{redis_server} {conf} --sentinel", 12))
    programs += worker_programs_conf(settings, layout)
    if settings.autoscale:
        programs.append(_program("autoscaler", f"{sys.executable} -m launcher.autoscaler", 22, stopwaitsecs=10,
                                 environment=f'INFERQ_SUPERVISOR_URL="unix://{data / "supervisor.sock"}"'))
    programs.append(_program("webhooks", f"{sys.executable} -m workers.webhooks", 25,
                             stopwaitsecs=40))
    programs.append(_program("web", f"{bin_dir / 'gunicorn'} -c web/gunicorn.conf.py web.wsgi:app", 30,
                             stopwaitsecs=35))
    if nginx:
        programs.append(_program("nginx", f"{nginx} -c {data / 'nginx' / 'nginx.conf'}", 40))
    return _write_supervisord_conf(data, programs)


def worker_programs_conf(settings: Settings, layout: dict[str, list[str]]) -> list[str]:
    """A program per worker layout entry; with autoscaling, ``max`` processes the autoscaler starts."""
    scaling = autoscaler.policies(settings, layout) if settings.autoscale else {}
    programs = []
    for program, group in layout.items():
        # A stable id per process: a restarted worker re-queues the jobs it held.
        extra: dict[str, object] = {}
        worker_id = f"{program}@{socket.gethostname()}"
        count = scaling[program].max if settings.autoscale else settings.workers_per_model
        if settings.autoscale or count > 1:
            extra = {"numprocs": max(1, count), "process_name": "%(program_name)s-%(process_num)d"}
            worker_id = f"{program}-%(process_num)d@{socket.gethostname()}"
        if settings.autoscale:
            extra["autostart"] = "false"  # the autoscaler starts them
        programs.append(_program(program, f"{sys.executable} -m workers.inference {' '.join(group)}", 20,
                                 stopwaitsecs=130, killasgroup="true",
                                 environment=f'INFERQ_WORKER_ID="{worker_id}"', **extra))
    return programs


def _write_supervisord_conf(data: Path, programs: list[str]) -> Path:
    conf = data / "supervisord.conf"
    run_as = "user=root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"""[supervisord]
nodaemon=true
silent=true
; Raises the open-files limit for every child: a thousand parked long-polls need
; nginx, gunicorn and Redis to hold thousands of sockets.
minfds={open_files_limit()}
{run_as}
logfile={data / 'logs' / 'supervisord.log'}
pidfile={data / 'supervisord.pid'}
childlogdir={data / 'logs'}
directory={ROOT}

[unix_http_server]
file={data / 'supervisor.sock'}
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{data / 'supervisor.sock'}
""" + "".join(programs))
    return conf


def _program(name: str, command: str, priority: int, **extra) -> str:
    autostart = extra.pop("autostart", "true")
    lines = [
        f"\n[program:{name}]",
        f"command={command}",
        f"directory={ROOT}",
        f"priority={priority}",
        f"autostart={autostart}",
        "autorestart=true",
        "startsecs=1",
        "startretries=100",
        "redirect_stderr=true",
        f"stdout_logfile=%(here)s/logs/{name}.log",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=2",
    ]
    lines += [f"{key}={value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


class NewModelPrograms:
    """Serves model names that appear in the repository after the stack started.

    Workers roll out new *versions* of their models themselves; a new *name* needs a worker
    program. This rewrites the supervisord config with a program for it and asks supervisord
    to re-read it (``supervisorctl update``): the new group is added, running ones are left
    alone, and the autoscaler adopts the group on its next round.
    """

    def __init__(self, settings: Settings, layout: dict[str, list[str]],
                 rewrite: Callable[[dict[str, list[str]]], Path]):
        self.settings = settings
        self.layout = dict(layout)
        self.rewrite = rewrite

    def unserved(self, now: float) -> list[str]:
        """Model names with a complete-looking version that no worker program serves yet."""
        served = {model for models in self.layout.values() for model in models}
        found = discover(ROOT / self.settings.models_dir, self.settings.model_names or None)
        return sorted(name for name, versions in found.items() if name not in served
                      and now - last_change(versions[-1][1]) >= self.settings.reload_settle_s)

    def add(self, supervisor_url: str, now: float) -> dict[str, list[str]]:
        """Add worker programs for the unserved models; returns them."""
        new_models = self.unserved(now)
        if not new_models:
            return {}
        added = worker_programs(self.settings, new_models)
        self.rewrite({**self.layout, **added})
        rpc = autoscaler.SupervisorPool(supervisor_url).rpc
        new_groups = rpc.reloadConfig()[0][0]
        for program in added:
            if program in new_groups:
                rpc.addProcessGroup(program)
        self.layout.update(added)
        print(f"serving new models {', '.join(new_models)} ({', '.join(added)})", flush=True)
        return added


