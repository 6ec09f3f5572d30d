"""The Kubernetes manifests: every resource validates against the Kubernetes schema
(kubernetes-validate, strict), and each model's KEDA ScaledObject scales its own worker
Deployment on the backlog metric /metrics really exports, with the local autoscaler's bounds."""
import importlib.util
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from launcher.autoscaler import Policy
from shared.settings import Settings
from shared.signatures import ModelCatalog
from tests.unit.conftest import DIGITS
from web import metrics

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"


def load_renderer():
    spec = importlib.util.spec_from_file_location("k8s_model", ROOT / "scripts" / "k8s_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resources() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name.endswith(".template.yaml"):
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def test_every_manifest_validates_against_the_kubernetes_schema():
    checked = 0
    for name, resource in resources():
        assert resource.get("apiVersion") and resource.get("kind") and resource["metadata"].get("name"), name
        if resource["kind"] == "ScaledObject":
            continue  # a KEDA custom resource: checked below
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        checked += 1
    kinds = {r["kind"] for _, r in resources()}
    assert {"StatefulSet", "Deployment", "Service", "Ingress", "NetworkPolicy", "ScaledObject"} <= kinds and checked >= 8


def test_redis_keeps_its_data_on_a_persistent_volume_with_fsync_always():
    [redis] = [r for _, r in resources() if r["kind"] == "StatefulSet"]
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--appendonly" in args and args[args.index("--appendfsync") + 1] == "always"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_the_committed_digits_manifests_are_what_the_template_renders():
    rendered = load_renderer().render("digits", Settings())
    assert (K8S / "worker-digits.yaml").read_text() == rendered


@pytest.mark.parametrize("model", ["digits"])
def test_each_scaled_object_scales_its_worker_on_the_exported_backlog_with_the_autoscalers_bounds(redis_client, model):
    by_kind = {(r["kind"], r["metadata"]["name"]): r for _, r in resources()}
    scaled = by_kind[("ScaledObject", f"worker-{model}")]
    target = scaled["spec"]["scaleTargetRef"]
    worker = by_kind[(target["kind"], target["name"])]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"worker-{model}"}
    assert worker["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "-m", "workers.inference", model]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"] == f'max(inferq_backlog{{model="{model}"}})'
    settings = Settings()
    local = Policy(settings.autoscale_min, settings.autoscale_max, settings.autoscale_target_backlog,
                   settings.autoscale_up_cooldown_s, settings.autoscale_down_cooldown_s)
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (local.min, local.max)
    assert int(trigger["metadata"]["threshold"]) == local.target_backlog
    assert scaled["spec"]["cooldownPeriod"] == local.down_cooldown_s
    # The metric the trigger names is one /metrics really exports, labelled by model.
    ModelCatalog(redis_client).publish(DIGITS)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render(redis_client).decode())}
    assert any(s.labels.get("model") == "digits" for s in families["inferq_backlog"].samples)


def test_worker_pods_drain_before_they_go():
    workers = [r for _, r in resources() if r["kind"] == "Deployment" and r["metadata"]["name"].startswith("worker-")]
    assert workers
    for worker in workers:
        pod = worker["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= 300
        stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
        assert "kill -TERM 1" in stop[-1]


def pods() -> list[tuple[str, dict]]:
    return [(r["metadata"]["name"], r["spec"]["template"]["spec"]) for _, r in resources()
            if r["kind"] in {"Deployment", "StatefulSet"}]


def test_every_pod_runs_unprivileged_as_a_non_root_user_on_a_read_only_root():
    assert len(pods()) >= 4
    for name, pod in pods():
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            own = container["securityContext"]
            assert own["allowPrivilegeEscalation"] is False and own["readOnlyRootFilesystem"] is True, name
            assert own["capabilities"] == {"drop": ["ALL"]}, name


def test_inferq_processes_get_a_writable_tmp_on_their_read_only_root():
    for name, pod in pods():
        if name == "redis":
            continue  # writes only its --dir, the data volume
        volumes = {v["name"]: v for v in pod["volumes"]}
        [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert "emptyDir" in volumes[mount["name"]], name


def test_secrets_are_required_and_only_the_tracing_and_replicated_redis_configs_are_optional():
    for name, pod in pods():
        for container in pod["containers"]:
            for item in container.get("env", []):
                reference = item.get("valueFrom", {}).get("secretKeyRef")
                assert reference is None or "optional" not in reference, (name, item["name"])
            optional = [e["configMapRef"]["name"] for e in container.get("envFrom", []) if e["configMapRef"].get("optional")]
            assert optional in ([], ["inferq-otel", "inferq-redis"]), name


def test_the_webhook_sender_runs_from_the_webhook_image():
    [webhooks] = [r for _, r in resources() if r["kind"] == "Deployment" and r["metadata"]["name"] == "webhooks"]
    container = webhooks["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("inferq/webhooks:")
    assert container["command"] == ["python", "-m", "workers.webhooks"]


def test_redis_memory_is_bounded_below_its_limit_and_never_evicts():
    [redis] = [r for _, r in resources() if r["kind"] == "StatefulSet"]
    container = redis["spec"]["template"]["spec"]["containers"][0]
    args, env = container["args"], {e["name"]: e.get("value") for e in container["env"]}
    assert args[args.index("--maxmemory") + 1] == "$(REDIS_MAXMEMORY)" and env["REDIS_MAXMEMORY"] == "2gb"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert container["resources"]["limits"]["memory"] == "3Gi"  # above 2gb: room for the AOF rewrite


def test_only_inferq_pods_may_reach_redis_and_only_on_its_port():
    [policy] = [r for _, r in resources() if r["kind"] == "NetworkPolicy"]
    [redis] = [r for _, r in resources() if r["kind"] == "StatefulSet"]
    assert policy["spec"]["podSelector"]["matchLabels"] == redis["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "inferq"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    for _, workload in resources():
        if workload["kind"] in {"Deployment", "StatefulSet"}:
            labels = workload["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "inferq", workload["metadata"]["name"]
