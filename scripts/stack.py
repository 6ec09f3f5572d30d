"""Run the whole stack on one machine: Redis, inference workers, gunicorn and nginx.

``make run`` calls this. It renders configs into the data folder, trains the demo model if
it is missing, and hands the processes to supervisord, which restarts any that crash.
It prints the URL once the API is ready; Ctrl-C (or SIGTERM) stops everything cleanly.

Why supervisord: it is a mature, pure-Python process manager with restart policies,
process groups and a control socket (supervisorctl), and it needs no daemon of its own.
"""
from __future__ import annotations

import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.settings import Settings  # noqa: E402
from workers import autoscaler  # noqa: E402
from workers.layout import programs as worker_programs  # noqa: E402
from workers.registry import discover, last_change  # noqa: E402

READY_TIMEOUT_S = 180.0
"""How long to wait for /readyz before giving up (TensorFlow start and warm-up included)."""

NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "inferq.conf.template"
DEMO_MODEL = ROOT / "models" / "digits" / "1" / "model.keras"


def main() -> int:
    settings = Settings.from_env()
    data = (ROOT / settings.data_dir).resolve()
    for sub in ("logs", "redis", "nginx/tmp"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not env.get("INFERQ_REDIS_URL"):
        env["INFERQ_REDIS_URL"] = _local_redis_url(settings, data)
    if not env.get("INFERQ_WEBHOOK_SECRET"):
        env["INFERQ_WEBHOOK_SECRET"] = _webhook_secret(data)
    ensure_demo_model(settings)
    nginx = shutil.which("nginx")
    if nginx:
        env["INFERQ_WEB_BIND"] = settings.web_bind
        write_nginx_conf(settings, data)
    else:
        print("nginx is not installed (apt-get install nginx-light); serving gunicorn directly.")
        env["INFERQ_WEB_BIND"] = f"{settings.bind_host}:{settings.port}"
    models = sorted(discover(ROOT / settings.models_dir, settings.model_names or None))
    own_redis = not os.environ.get("INFERQ_REDIS_URL")
    layout = worker_programs(settings, models)
    conf = write_supervisor_conf(settings, data, layout, nginx, own_redis)
    newcomers = NewModelPrograms(settings, layout, lambda grown: write_supervisor_conf(
        settings, data, grown, nginx, own_redis))
    return supervise(conf, settings, env, newcomers)


def _local_redis_url(settings: Settings, data: Path) -> str:
    """Start-of-day Redis settings: a generated password kept in the data folder."""
    password_file = data / "redis.password"
    if not password_file.exists():
        password_file.write_text(secrets.token_urlsafe(24))
        password_file.chmod(0o600)
    password = password_file.read_text().strip()
    (data / "redis.conf").write_text("\n".join([
        "bind 127.0.0.1 -::1",
        f"port {settings.local_redis_port}",
        f"dir {data / 'redis'}",
        "appendonly yes",
        f"appendfsync {settings.redis_appendfsync}",
        'save ""',
        f"requirepass {password}",
        "protected-mode yes",
        "daemonize no",
        "",
    ]))
    (data / "redis.conf").chmod(0o600)
    return f"redis://:{password}@127.0.0.1:{settings.local_redis_port}/0"


def _webhook_secret(data: Path) -> str:
    """The webhook signing secret kept in the data folder; generated (and shown) once."""
    from workers.signing import new_secret

    secret_file = data / "webhook.secret"
    if not secret_file.exists():
        secret_file.write_text(new_secret())
        secret_file.chmod(0o600)
        print(f"generated the webhook signing secret (kept in {secret_file}):\n"
              f"  {secret_file.read_text()}\n"
              "give it to your webhook receivers; set INFERQ_WEBHOOK_SECRET to use your own.", flush=True)
    return secret_file.read_text().strip()


def ensure_demo_model(settings: Settings) -> None:
    """Train the digits model if the repository lacks it (a minute on two cores)."""
    if Path(settings.models_dir).resolve() != (ROOT / "models").resolve() or DEMO_MODEL.exists():
        return
    print("training the demo model (models/digits/1/model.keras) ...", flush=True)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "train_digits.py"), "--out", str(DEMO_MODEL)],
                   check=True)


def render_template(text: str, values: dict[str, str]) -> str:
    """Fill ``${NAME}`` placeholders like envsubst restricted to ``values``."""
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


def write_nginx_conf(settings: Settings, data: Path) -> Path:
    """nginx.conf for a non-daemon nginx under supervisord, with the shared site template."""
    site = render_template(NGINX_TEMPLATE.read_text(), {
        "INFERQ_UPSTREAM": settings.web_bind,
        "INFERQ_LISTEN": f"{settings.bind_host}:{settings.port}",
        "INFERQ_MAX_BODY_BYTES": str(settings.max_body_bytes),
        "INFERQ_PROXY_READ_TIMEOUT_S": str(int(settings.wait_cap_s) + 30),
        "INFERQ_NGINX_RATE_PER_S": str(settings.nginx_rate_per_s),
        "INFERQ_NGINX_BURST": str(settings.nginx_burst),
    }) + _ops_server(settings)
    tmp = data / "nginx" / "tmp"
    user = ""
    if os.geteuid() == 0:
        # nginx workers drop to nobody; they must own the body buffer folders.
        user = "user nobody nogroup;"
        for path in [tmp, *tmp.iterdir()]:
            shutil.chown(path, "nobody", "nogroup")
    conf = data / "nginx" / "nginx.conf"
    conf.write_text(f"""{user}
worker_processes 1;
worker_rlimit_nofile {_open_files_limit()};
daemon off;
pid {data / 'nginx' / 'nginx.pid'};
error_log {data / 'logs' / 'nginx-error.log'} warn;
events {{ worker_connections 4096; }}
http {{
    access_log {data / 'logs' / 'nginx-access.log'};
    client_body_temp_path {tmp / 'body'};
    proxy_temp_path {tmp / 'proxy'};
    fastcgi_temp_path {tmp / 'fastcgi'};
    uwsgi_temp_path {tmp / 'uwsgi'};
    scgi_temp_path {tmp / 'scgi'};
    sendfile on;
    tcp_nodelay on;
{site}
}}
""")
    return conf


def _ops_server(settings: Settings) -> str:
    """With ``INFERQ_OPS_LISTEN``, a second listener serving only the health and metrics routes."""
    if not settings.ops_listen:
        return ""
    return f"""
server {{
    listen {settings.ops_listen};
    server_tokens off;
    location ~ ^/(healthz|readyz|metrics)$ {{
        proxy_pass http://inferq_web;
    }}
    location / {{
        default_type application/problem+json;
        return 404 '{{"type":"https://inferq.dev/problems/not-found","title":"Not found","status":404,"detail":"this listener serves /healthz, /readyz and /metrics only"}}';
    }}
}}
"""


def write_supervisor_conf(settings: Settings, data: Path, layout: dict[str, list[str]], nginx: str | None,
                          own_redis: bool) -> Path:
    """One program per process: redis, a worker program per model (or group, ``layout``), gunicorn, nginx."""
    bin_dir = Path(sys.executable).parent
    programs = []
    if own_redis:
        programs.append(_program("redis", f"redis-server {data / 'redis.conf'}", 10))
    scaling = autoscaler.policies(settings, layout) if settings.autoscale else {}
    for program, group in layout.items():
        # A stable id per process: a restarted worker re-queues the jobs it held.
        extra = {}
        worker_id = f"{program}@{socket.gethostname()}"
        count = scaling[program].max if settings.autoscale else settings.workers_per_model
        if settings.autoscale or count > 1:
            extra = {"numprocs": max(1, count), "process_name": "%(program_name)s-%(process_num)d"}
            worker_id = f"{program}-%(process_num)d@{socket.gethostname()}"
        if settings.autoscale:
            extra["autostart"] = "false"  # the autoscaler starts them
        programs.append(_program(program, f"{sys.executable} -m workers {' '.join(group)}", 20,
                                 stopwaitsecs=130, killasgroup="true",
                                 environment=f'INFERQ_WORKER_ID="{worker_id}"', **extra))
    if settings.autoscale:
        programs.append(_program("autoscaler", f"{sys.executable} -m workers.autoscaler", 22, stopwaitsecs=10,
                                 environment=f'INFERQ_SUPERVISOR_URL="unix://{data / "supervisor.sock"}"'))
    programs.append(_program("webhooks", f"{sys.executable} -m workers.webhook_worker", 25,
                             stopwaitsecs=40))
    programs.append(_program("web", f"{bin_dir / 'gunicorn'} -c web/gunicorn.conf.py web.wsgi:app", 30,
                             stopwaitsecs=35))
    if nginx:
        programs.append(_program("nginx", f"{nginx} -c {data / 'nginx' / 'nginx.conf'}", 40))
    conf = data / "supervisord.conf"
    run_as = "user=root\n" if os.geteuid() == 0 else ""
    conf.write_text(f"""[supervisord]
nodaemon=true
silent=true
; Raises the open-files limit for every child: a thousand parked long-polls need
; nginx, gunicorn and Redis to hold thousands of sockets.
minfds={_open_files_limit()}
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


def _open_files_limit(wanted: int = 16384) -> int:
    """As many open files as the hard limit allows, up to ``wanted`` (supervisord needs less than hard)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if hard == resource.RLIM_INFINITY else max(1024, min(wanted, hard - 1))


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


def supervise(conf: Path, settings: Settings, env: dict[str, str], newcomers: NewModelPrograms) -> int:
    """Run supervisord, announce the URL when ready, add workers for new model names while it
    runs, and stop it on Ctrl-C or SIGTERM."""
    supervisord = Path(sys.executable).parent / "supervisord"
    proc = subprocess.Popen([str(supervisord), "-c", str(conf)], env=env, cwd=ROOT,
                            start_new_session=True)

    def stop(signum, _frame):
        print(f"\nstopping (signal {signum}) ...", flush=True)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    url = f"http://{settings.bind_host}:{settings.port}"
    if wait_ready(url, proc):
        announce(url)
    else:
        print(f"the stack did not become ready; see {conf.parent / 'logs'}", flush=True)
    supervisor_url = f"unix://{conf.parent / 'supervisor.sock'}"
    while True:
        try:
            return proc.wait(timeout=settings.reload_interval_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            newcomers.add(supervisor_url, time.time())
        except Exception as exc:  # supervisord busy or stopping: the next round tries again
            print(f"could not add workers for new models yet: {exc!r}", flush=True)


def wait_ready(url: str, proc: subprocess.Popen) -> bool:
    """Poll /readyz until it answers 200, supervisord exits, or the timeout passes."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def announce(url: str) -> None:
    """Print where the API is and a request to try."""
    from sklearn.datasets import load_digits

    image = load_digits().images[0].astype(int).tolist()
    print(f"""
inferq is ready at {url}   (Ctrl-C stops everything)

  curl -s -X POST {url}/v1/models/digits/jobs -H 'Content-Type: application/json' \\
       -d '{{"instances": [{image}]}}'
  curl -s '{url}/v1/jobs/<id>?wait=10'
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
