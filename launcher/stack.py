"""Run the whole stack on one machine: Redis, inference workers, gunicorn and nginx.

``make run`` calls this. It renders configs into the data folder, trains the demo model if
it is missing, and hands the processes to supervisord, which restarts any that crash.
It prints the URL once the API is ready; Ctrl-C (or SIGTERM) stops everything cleanly.

Why supervisord: it is a mature, pure-Python process manager with restart policies,
process groups and a control socket (supervisorctl), and it needs no daemon of its own.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from launcher import binaries, configs, redis_set
from launcher.layout import programs as worker_programs
from launcher.supervisor import NewModelPrograms, write_supervisor_conf
from shared import settings as settings_module
from shared.settings import Settings
from workers.inference.registry import discover

ROOT = Path(__file__).resolve().parent.parent

READY_TIMEOUT_S = 180.0
"""How long to wait for /readyz before giving up (TensorFlow start and warm-up included)."""

DEMO_MODEL = ROOT / "models" / "digits" / "1" / "model.keras"


def main() -> int:
    """Render the configs, then run supervisord until Ctrl-C or SIGTERM."""
    settings = Settings.from_env()
    data = (ROOT / settings.data_dir).resolve()
    for sub in ("logs", "redis", "nginx/tmp"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    own_redis = not settings_module.is_given("redis_url") and not settings_module.is_given("redis_sentinels")
    local = redis_set.local_redis(settings, data) if own_redis else None
    env = settings_module.child_environment({
        **(local.environment(settings, settings_module.is_given("redis_min_replicas")) if local else {}),
        "webhook_secret": settings.webhook_secret or configs.webhook_secret(data),
    })
    ensure_demo_model(settings)
    try:
        nginx, redis_server = servers(settings, own_redis)
    except binaries.MissingServer as missing:
        sys.exit(str(missing))
    if nginx is not None:
        env["INFERQ_WEB_BIND"] = settings.web_bind
        configs.write_nginx_conf(settings, data)
    else:
        env["INFERQ_WEB_BIND"] = f"{settings.bind_host}:{settings.port}"
    models = sorted(discover(ROOT / settings.models_dir, settings.model_names or None))
    layout = worker_programs(settings, models)
    conf = write_supervisor_conf(settings, data, layout, nginx, redis_server, local)
    newcomers = NewModelPrograms(settings, layout, lambda grown: write_supervisor_conf(
        settings, data, grown, nginx, redis_server, local))
    return supervise(conf, settings, env, newcomers)


def servers(settings: Settings, own_redis: bool) -> tuple[str | None, str | None]:
    """The nginx and redis-server binaries to start (None: not started), announced on stdout."""
    nginx = binaries.find("nginx", settings.nginx)
    redis_server = binaries.find("redis-server", settings.redis_server) if own_redis else None
    print(f"nginx: {nginx.describe() if nginx else 'off (INFERQ_NGINX=off): gunicorn serves directly'}", flush=True)
    print(f"redis: {describe_redis(settings, redis_server)}", flush=True)
    return (nginx.path if nginx else None), (redis_server.path if redis_server else None)


def describe_redis(settings: Settings, redis_server: binaries.Server | None) -> str:
    """Which Redis the stack uses, for the start-up lines."""
    if redis_server is None and settings.redis_sentinels:
        return f"through the Sentinels at {settings.redis_sentinels} (not started here)"
    if redis_server is None:
        return f"{settings.redis_url.split('@')[-1]} (INFERQ_REDIS_URL, not started here)"
    if settings.local_redis_replicas > 0:
        return (f"{redis_server.describe()}: a primary and {settings.local_redis_replicas} replica(s) from port "
                f"{settings.local_redis_port}, {redis_set.SENTINELS} Sentinels from port {settings.local_sentinel_port}")
    return redis_server.describe()


def ensure_demo_model(settings: Settings) -> None:
    """Train the digits model if the repository lacks it (a minute on two cores)."""
    if Path(settings.models_dir).resolve() != (ROOT / "models").resolve() or DEMO_MODEL.exists():
        return
    print("training the demo model (models/digits/1/model.keras) ...", flush=True)
    subprocess.run([sys.executable, str(ROOT / "scripts" / "train_digits.py"), "--out", str(DEMO_MODEL)],
                   check=True)


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
