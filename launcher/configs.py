"""The files ``make run`` writes into its data folder: nginx's config and the webhook secret
(Redis' configs: ``launcher.redis_set``).

Each is rendered from settings; nothing here starts a process.
"""
from __future__ import annotations

import os
import resource
import shutil
import stat
import tempfile
from pathlib import Path

from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "inferq.conf.template"


def webhook_secret(data: Path) -> str:
    """The webhook signing secret kept in the data folder; generated (and shown) once."""
    from workers.webhooks.signing import new_secret

    secret_file = data / "webhook.secret"
    if not secret_file.exists():
        secret_file.write_text(new_secret())
        secret_file.chmod(0o600)
        print(f"generated the webhook signing secret (kept in {secret_file}):\n"
              f"  {secret_file.read_text()}\n"
              "give it to your webhook receivers; set INFERQ_WEBHOOK_SECRET to use your own.", flush=True)
    return secret_file.read_text().strip()


def render_template(text: str, values: dict[str, str]) -> str:
    """Fill ``${NAME}`` placeholders like envsubst restricted to ``values``."""
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


NGINX_TEMP_FOLDERS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")
"""Where nginx spools bodies and answers too large for its memory buffers."""


def _reachable_by_others(folder: Path) -> bool:
    """Whether a user other than the owner can walk down to ``folder``. Under a private home
    folder (mode 0700, as root's usually is) nobody cannot, and every body over nginx's 1 MiB
    memory buffer would fail with 500, so root's nginx then spools under the system's
    temporary folder instead."""
    return all(path.stat().st_mode & stat.S_IXOTH for path in folder.resolve().parents)


def _nginx_temp_folder(tmp: Path) -> Path:
    """Where nginx spools; as root its workers drop to nobody, who must own the folders and reach them."""
    if os.geteuid() != 0:
        return tmp
    tmp = tmp if _reachable_by_others(tmp) else Path(tempfile.mkdtemp(prefix="inferq-nginx-"))
    for path in [tmp, *(tmp / name for name in NGINX_TEMP_FOLDERS)]:
        path.mkdir(exist_ok=True)
        shutil.chown(path, "nobody", "nogroup")
    return tmp


def write_nginx_conf(settings: Settings, data: Path) -> Path:
    """nginx.conf for a non-daemon nginx under supervisord, with the shared site template."""
    site = render_template(NGINX_TEMPLATE.read_text(), {
        "INFERQ_UPSTREAM": settings.web_bind,
        "INFERQ_LISTEN": f"{settings.bind_host}:{settings.port}",
        "INFERQ_MAX_BODY_BYTES": str(settings.max_body_bytes),
        "INFERQ_PROXY_READ_TIMEOUT_S": str(int(settings.wait_cap_s) + 30),
        "INFERQ_NGINX_RATE_PER_S": str(settings.nginx_rate_per_s),
        "INFERQ_NGINX_BURST": str(settings.nginx_burst),
        "INFERQ_NGINX_CONNECTIONS_PER_CLIENT": str(settings.nginx_connections_per_client),
    }) + _ops_server(settings)
    tmp = _nginx_temp_folder(data / "nginx" / "tmp")
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    conf = data / "nginx" / "nginx.conf"
    conf.write_text(f"""{user}
worker_processes 1;
worker_rlimit_nofile {open_files_limit()};
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


OPS_NOT_FOUND = ('{"type":"https://inferq.dev/problems/not-found","title":"Not found","status":404,'
                 '"detail":"this listener serves /healthz, /readyz and /metrics only"}')
"""What the operations listener answers for any other path (problem+json, like the API)."""


def _ops_server(settings: Settings) -> str:
    """With ``INFERQ_OPS_LISTEN``, a second listener serving only the health and metrics routes."""
    if not settings.ops_listen:
        return ""
    return f"""
server {{
    listen {settings.ops_listen};
    server_tokens off;
    location ~ ^/(healthz|readyz|metrics)$ {{
        proxy_set_header X-Inferq-Listener ops;
        proxy_pass http://inferq_web;
    }}
    location / {{
        default_type application/problem+json;
        return 404 '{OPS_NOT_FOUND}';
    }}
}}
"""


def open_files_limit(wanted: int = 16384) -> int:
    """As many open files as the hard limit allows, up to ``wanted`` (supervisord needs less than hard)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return wanted if hard == resource.RLIM_INFINITY else max(1024, min(wanted, hard - 1))
