"""deploy/k8s/replicated: Redis with two replicas and three Sentinels, validated like the other
manifests (kubernetes-validate, strict), and its start scripts run as the pods would run them."""
import socket
import subprocess
import time
from pathlib import Path

import kubernetes_validate
import pytest
import redis
import yaml

from tests.conftest import server_binary
from tests.unit.test_k8s_manifests import K8S, KUBERNETES_VERSION, pods

REPLICATED = K8S / "replicated"


def resources() -> list[dict]:
    return [doc for path in sorted(REPLICATED.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> dict[str, dict]:
    return {r["metadata"]["name"]: r for r in resources() if r["kind"] == kind}


def scripts() -> dict[str, str]:
    return by_kind("ConfigMap")["redis-replicated-scripts"]["data"]


def test_every_replicated_manifest_validates_against_the_kubernetes_schema():
    for resource in resources():
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    assert {"StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"} <= {
        r["kind"] for r in resources()}


def test_three_data_nodes_and_three_sentinels_spread_over_hosts():
    sets = by_kind("StatefulSet")
    assert sets["redis"]["spec"]["replicas"] == 3 and sets["redis-sentinel"]["spec"]["replicas"] == 3
    for stateful in sets.values():
        [spread] = stateful["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "DoNotSchedule"
    assert sets["redis"]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_a_disruption_budget_keeps_two_of_each_so_a_drain_never_costs_the_quorum():
    budgets = by_kind("PodDisruptionBudget")
    sets = by_kind("StatefulSet")
    for name in ("redis", "redis-sentinel"):
        assert budgets[name]["spec"]["minAvailable"] == 2
        assert budgets[name]["spec"]["selector"]["matchLabels"] == sets[name]["spec"]["selector"]["matchLabels"]


def test_the_inferq_pods_read_the_sentinels_from_the_optional_config_map():
    settings = by_kind("ConfigMap")["inferq-redis"]["data"]
    assert settings["INFERQ_REDIS_SENTINELS"].count(":26379") == 3 and settings["INFERQ_REDIS_MIN_REPLICAS"] == "1"
    for name, pod in pods():
        if name == "redis":
            continue
        for container in pod["containers"]:
            assert {"name": "inferq-redis", "optional": True} in [e["configMapRef"] for e in container["envFrom"]]


@pytest.mark.parametrize("name", ["current-primary.sh", "start-redis.sh", "start-sentinel.sh"])
def test_each_start_script_is_valid_shell(name):
    result = subprocess.run(["sh", "-n"], input=scripts()[name], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr


def pod_files(tmp_path: Path, hostname: str) -> tuple[Path, dict]:
    """The scripts under a folder standing in for /scripts and /data, with the pod's hostname."""
    folder = tmp_path / "pod"
    (folder / "scripts").mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "bin").mkdir()
    for name, text in scripts().items():
        (folder / "scripts" / name).write_text(text.replace("/scripts/", f"{folder}/scripts/")
                                               .replace("/data", f"{folder}/data"))
    (folder / "bin" / "hostname").write_text(f"#!/bin/sh\necho {hostname}\n")
    (folder / "bin" / "hostname").chmod(0o755)
    redis_server = server_binary("redis-server")
    return folder, {"PATH": f"{folder / 'bin'}:{Path(redis_server).parent}:/usr/bin:/bin", "REDIS_PASSWORD": "pw",
                    "REDIS_MAXMEMORY": "64mb"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_first_pod_with_no_sentinel_up_starts_as_the_primary_with_aof_and_a_password(tmp_path):
    folder, env = pod_files(tmp_path, "redis-0")
    port = free_port()
    script = (folder / "scripts" / "start-redis.sh")
    script.write_text(script.read_text().replace('echo "port 6379"', f'echo "port {port}"; echo "bind 127.0.0.1"'))
    process = subprocess.Popen(["sh", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(port=port, password="pw", socket_timeout=2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                info = client.info()
                break
            except redis.ConnectionError:
                time.sleep(0.2)
        assert info["role"] == "master" and info["aof_enabled"] == 1
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong", socket_timeout=2).ping()
    finally:
        process.terminate()
        process.wait(10)


def written_config(tmp_path: Path, hostname: str, script_name: str, conf_name: str) -> list[str]:
    """The config ``script_name`` writes in a pod called ``hostname`` (stopping short of the server)."""
    folder, env = pod_files(tmp_path, hostname)
    script = folder / "scripts" / script_name
    script.write_text(script.read_text().replace("exec redis-server", "echo would start"))
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return (folder / "data" / conf_name).read_text().splitlines()


def test_any_other_pod_starts_as_a_replica_of_the_primary(tmp_path):
    conf = written_config(tmp_path, "redis-2", "start-redis.sh", "redis.conf")
    assert "replicaof redis-0.redis 6379" in conf and "replica-announce-ip redis-2.redis" in conf
    assert "masterauth pw" in conf and "appendfsync always" in conf


def test_a_sentinel_watches_the_primary_with_quorum_two(tmp_path):
    conf = written_config(tmp_path, "redis-sentinel-1", "start-sentinel.sh", "sentinel.conf")
    assert "sentinel monitor inferq redis-0.redis 6379 2" in conf
    assert "sentinel announce-ip redis-sentinel-1.redis-sentinel" in conf and "requirepass pw" in conf
