"""compose.yaml, the Dockerfiles and requirements, checked with the ecosystem's validators.

There is no Docker engine here, so compose.yaml is interpolated like Compose does and then
validated against the Compose specification (compose-spec); Dockerfiles go through hadolint.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import compose_spec
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""

    def substitute(match):
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name, "")
        if value:
            return value
        if op == ":?":
            raise ValueError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return VARIABLE.sub(substitute, text)


@pytest.fixture(scope="module")
def compose():
    text = interpolate((ROOT / "compose.yaml").read_text(),
                       {"INFERQ_REDIS_PASSWORD": "secret", "INFERQ_WEBHOOK_SECRET": "whsec_c2VjcmV0"})
    parsed = compose_spec.PyCompose.from_yaml(text)
    parsed.validate()
    return yaml.safe_load(text)


def test_compose_requires_a_redis_password():
    with pytest.raises(ValueError, match="INFERQ_REDIS_PASSWORD"):
        interpolate((ROOT / "compose.yaml").read_text(), {})


def test_compose_requires_a_webhook_secret():
    with pytest.raises(ValueError, match="INFERQ_WEBHOOK_SECRET"):
        interpolate((ROOT / "compose.yaml").read_text(), {"INFERQ_REDIS_PASSWORD": "secret"})


def test_compose_has_the_five_services_each_with_a_healthcheck_on_the_backend_network(compose):
    default = {name for name, service in compose["services"].items() if not service.get("profiles")}
    assert default == {"redis", "web", "worker", "webhooks", "nginx"}
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name
        assert service["networks"] == ["backend"], name


def test_only_nginx_publishes_a_port_and_only_on_loopback(compose):
    published = {name: s.get("ports") for name, s in compose["services"].items() if s.get("ports")}
    assert published == {"nginx": ["127.0.0.1:8000:8080"]}


def test_redis_keeps_an_append_only_file_and_a_password(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--requirepass") + 1] == "secret"
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]


def test_redis_memory_is_bounded_and_full_means_refused_writes_not_evicted_jobs(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--maxmemory") + 1] == "2gb"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    text = interpolate((ROOT / "compose.yaml").read_text(), {"INFERQ_REDIS_PASSWORD": "s", "INFERQ_WEBHOOK_SECRET": "w",
                                                             "INFERQ_REDIS_MAXMEMORY": "512mb"})
    command = yaml.safe_load(text)["services"]["redis"]["command"]
    assert command[command.index("--maxmemory") + 1] == "512mb"


def test_the_webhook_worker_gets_redis_and_its_signing_secret(compose):
    environment = compose["services"]["webhooks"]["environment"]
    assert environment["INFERQ_WEBHOOK_SECRET"] == "whsec_c2VjcmV0"
    assert compose["services"]["webhooks"]["build"]["dockerfile"] == "deploy/docker/webhooks.Dockerfile"


def test_nginx_gets_a_per_client_connection_limit(compose):
    assert str(compose["services"]["nginx"]["environment"]["INFERQ_NGINX_CONNECTIONS_PER_CLIENT"]) == "1500"


def test_web_and_workers_wait_for_a_healthy_redis(compose):
    for name in ("web", "worker", "webhooks"):
        assert compose["services"][name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert compose["services"][name]["environment"]["INFERQ_REDIS_URL"] == "redis://:secret@redis:6379/0"


def test_the_replicated_profile_adds_two_replicas_and_three_sentinels_with_quorum_two(compose):
    replicated = {name for name, service in compose["services"].items() if "replicated" in service.get("profiles", [])}
    assert replicated == {"redis-replica-1", "redis-replica-2", "sentinel-1", "sentinel-2", "sentinel-3"}
    for name in ("redis-replica-1", "redis-replica-2"):
        command = compose["services"][name]["command"]
        assert command[command.index("--replicaof") + 1:command.index("--replicaof") + 3] == ["redis", "6379"]
        assert command[command.index("--appendfsync") + 1] == "always" and "--masterauth" in command
    # Every node can follow a new primary after a failover, the first primary included.
    assert "--masterauth" in compose["services"]["redis"]["command"]


def test_each_sentinel_command_writes_a_config_watching_redis_with_quorum_two(compose, tmp_path):
    script = compose["services"]["sentinel-1"]["command"][2]
    # As Compose runs it: $$ unescaped, the container's environment; it starts nothing here.
    runnable = script.replace("$$", "$").replace("/tmp/sentinel.conf", str(tmp_path / "s.conf"))
    runnable = runnable.replace("exec redis-server", "echo would start")
    result = subprocess.run(["sh", "-c", runnable], capture_output=True, text=True, timeout=10,
                            env={"PATH": "/usr/bin:/bin", "REDIS_PASSWORD": "pw"})
    assert result.returncode == 0, result.stderr
    conf = (tmp_path / "s.conf").read_text().splitlines()
    assert "sentinel monitor inferq redis 6379 2" in conf and "sentinel auth-pass inferq pw" in conf
    assert "requirepass pw" in conf and "port 26379" in conf
    assert all(compose["services"][f"sentinel-{n}"]["command"] == compose["services"]["sentinel-1"]["command"]
               for n in (2, 3))


def test_the_inferq_services_can_be_pointed_at_the_sentinels(compose):
    text = interpolate((ROOT / "compose.yaml").read_text(), {
        "INFERQ_REDIS_PASSWORD": "secret", "INFERQ_WEBHOOK_SECRET": "w",
        "INFERQ_REDIS_SENTINELS": "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379", "INFERQ_REDIS_MIN_REPLICAS": "1"})
    services = yaml.safe_load(text)["services"]
    for name in ("web", "worker", "webhooks"):
        environment = services[name]["environment"]
        assert environment["INFERQ_REDIS_SENTINELS"] == "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379"
        assert environment["INFERQ_REDIS_SENTINEL_PASSWORD"] == "secret"
        assert str(environment["INFERQ_REDIS_MIN_REPLICAS"]) == "1"
    for name in ("web", "worker", "webhooks"):  # without them: the one redis, no waiting
        assert compose["services"][name]["environment"]["INFERQ_REDIS_SENTINELS"] == ""


def test_nginx_uses_the_same_site_template_as_make_run(compose):
    volumes = compose["services"]["nginx"]["volumes"]
    assert "./deploy/nginx/inferq.conf.template:/etc/nginx/templates/inferq.conf.template:ro" in volumes


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            names |= requirement_names(path.parent / line[3:])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[=<>~\[]", line)[0].lower())
    return names


def test_the_web_image_carries_no_tensorflow():
    web = requirement_names(ROOT / "requirements" / "web.txt")
    assert not {"tensorflow", "tensorflow-cpu", "keras"} & web
    assert {"flask", "gunicorn", "celery", "redis"} <= web


@pytest.mark.parametrize("modules", ["web.app, web.wsgi", "workers.webhooks.app, workers.webhooks.tasks, workers.webhooks.__main__"])
def test_web_and_webhook_worker_never_import_tensorflow(modules):
    code = (f"import sys, {modules}; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "INFERQ_REDIS_URL": "redis://127.0.0.1:1/0",
                                 "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile")),
                         ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile):
    """hadolint also flags an image that ends as root (DL3002)."""
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "deploy" / "docker").glob("*.Dockerfile")),
                         ids=lambda p: p.name)
def test_every_image_runs_as_a_non_root_user(dockerfile):
    users = [line.split()[1] for line in dockerfile.read_text().splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
