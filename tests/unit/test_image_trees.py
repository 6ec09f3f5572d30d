"""Each image's command starts from the files its Dockerfile COPYs, and nothing else.

There is no container engine here, so the image is approximated: its Dockerfile's COPY lines
are replayed into an empty folder (the image's WORKDIR), and the command's entry modules are
imported from that folder alone, by the venv's interpreter (which has the pip packages the
requirements name), with the environment compose or Kubernetes gives the container. A
module forgotten in a COPY line fails here instead of in a crash-looping container.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.test_deploy_files import interpolate, requirement_names

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
COMPOSE_ENV = {"INFERQ_REDIS_PASSWORD": "secret", "INFERQ_WEBHOOK_SECRET": "whsec_c2VjcmV0"}
IMAGES = {"inferq/web": "web", "inferq/worker": "worker", "inferq/webhooks": "webhooks"}
"""Kubernetes image names and the deploy/docker/<name>.Dockerfile each is built from."""
OWN = ("shared", "web", "workers", "launcher", "scripts", "bench", "tests")
TENSORFLOW = {"tensorflow", "tensorflow-cpu", "keras"}

PROBE = r'''
import ast, importlib, json, os, runpy, sys
tree, root, plan = os.path.realpath(sys.argv[1]), os.path.realpath(sys.argv[2]), json.loads(sys.argv[3])
OWN = tuple(plan["own"])
venv = os.path.realpath(sys.prefix) + os.sep  # the pip packages stay; the checkout goes
sys.path[:] = [tree] + [p for p in sys.path if p and (os.path.realpath(p).startswith(venv)
                        or not os.path.realpath(p).startswith(root + os.sep))]
os.chdir(tree)

def own_imports(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)

def load(name):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name or name.rpartition(".")[0] not in sys.modules:
            raise  # a missing module, not a name imported from one

for path in plan["run"]:
    runpy.run_path(path)
sources = [open(p).read() for p in plan["scan"]] + plan["code"]
for name in plan["modules"] + [n for s in sources for n in own_imports(s)]:
    if name.split(".")[0] in OWN:
        load(name)
for name, attr in plan["attributes"]:
    getattr(sys.modules[name], attr)
from shared.settings import Settings
for name, module in list(sys.modules.items()):
    make_app = getattr(module, "make_app", None)
    if name.split(".")[0] in OWN and getattr(make_app, "__module__", None) == name:
        make_app(Settings.from_env()).loader.import_default_modules()  # the Celery tasks it includes
files = {n: os.path.realpath(m.__file__) for n, m in sys.modules.items()
         if n.split(".")[0] in OWN and getattr(m, "__file__", None)}
print(json.dumps({"outside": sorted(n for n, f in files.items() if not f.startswith(tree + os.sep)),
                  "tensorflow": sorted(m for m in ("tensorflow", "keras") if m in sys.modules)}))
'''


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), keyword upper-cased."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """Each COPY's sources and destination, relative to WORKDIR."""
    found = []
    for keyword, rest in instructions(dockerfile):
        if keyword == "COPY":
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            found.append((words[:-1], words[-1]))
    return found


def image_env(dockerfile: Path, tree: Path) -> dict[str, str]:
    """The Dockerfile's ENV, with the WORKDIR (/app) standing for the tree."""
    env = {}
    for keyword, rest in instructions(dockerfile):
        if keyword == "ENV":
            env |= dict(word.split("=", 1) for word in shlex.split(rest))
    return {k: v.replace("/app", str(tree)) for k, v in env.items()}


def image_cmd(dockerfile: Path) -> list[str]:
    [cmd] = [json.loads(rest) for keyword, rest in instructions(dockerfile) if keyword == "CMD"]
    return cmd


def build_tree(dockerfile: Path, tree: Path) -> Path:
    """The files the image's COPY lines put under WORKDIR, copied from the checkout."""
    assert ("WORKDIR", "/app") in instructions(dockerfile)
    for sources, destination in copies(dockerfile):
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, tree / destination, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target = tree / destination / origin.name if destination.endswith("/") else tree / destination
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    return tree


def plan_for(command: list[str], tree: Path) -> dict:
    """What starting ``command`` imports: the entry modules, the files it runs, code it evaluates."""
    plan = {"own": OWN, "modules": [], "run": [], "scan": [], "code": [], "attributes": []}
    program, args = Path(command[0]).name, command[1:]
    if program == "python" and args[0] == "-m":
        package = tree / Path(*args[1].split("."))
        entry = package / "__main__.py" if package.is_dir() else package.with_suffix(".py")
        assert entry.is_file(), f"{args[1]} is not in the image"
        assert 'if __name__ == "__main__":' in entry.read_text(), "importing it would run it"
        plan["modules"].append(args[1] + (".__main__" if package.is_dir() else ""))
        plan["scan"].append(str(entry))
    elif program == "python" and args[0] == "-c":
        plan["code"].append(args[1])
    elif program == "gunicorn":
        config = tree / args[args.index("-c") + 1]
        assert config.is_file(), f"{config.name} is not in the image"
        plan["run"].append(str(config))
        plan["scan"].append(str(config))
        module, attribute = args[-1].split(":")
        plan["modules"].append(module)
        plan["attributes"].append([module, attribute])
    elif program == "celery":
        plan["modules"].append(args[args.index("-A") + 1])
    else:
        raise AssertionError(f"no rule for starting {command}")
    return plan


def start_from_tree(command: list[str], tree: Path, env: dict[str, str]) -> dict:
    """Run the probe for ``command`` isolated (-I: no PYTHON* variables, no cwd on sys.path)."""
    plan = plan_for(command, tree)
    result = subprocess.run([sys.executable, "-I", "-c", PROBE, str(tree), str(ROOT), json.dumps(plan)],
                            cwd=tree, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tree.parent), **env})
    assert result.returncode == 0, f"{command}: {result.stderr[-3000:]}"
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outside"] == [], f"{command} imported project modules from outside the image"
    return report


def compose_services() -> dict[str, dict]:
    text = interpolate((ROOT / "compose.yaml").read_text(), COMPOSE_ENV)
    return yaml.safe_load(text)["services"]


BUILT = sorted(name for name, service in compose_services().items() if "build" in service)


def dockerfile_of(service: dict) -> Path:
    return ROOT / service["build"]["dockerfile"]


def healthcheck_command(service: dict, dockerfile: Path) -> list[str]:
    test = service.get("healthcheck", {}).get("test")
    if test:
        assert test[0] == "CMD", "exec form: the image has the program, not necessarily a shell"
        return test[1:]
    [check] = [rest for keyword, rest in instructions(dockerfile) if keyword == "HEALTHCHECK"]
    return json.loads(check.split("CMD", 1)[1])


def compose_image(name: str, tmp_path) -> tuple[dict, Path, Path, dict]:
    """A compose service, its Dockerfile, the tree its COPY lines build, and its environment."""
    service = compose_services()[name]
    dockerfile = dockerfile_of(service)
    tree = build_tree(dockerfile, tmp_path / "app")
    env = image_env(dockerfile, tree) | {k: str(v) for k, v in service.get("environment", {}).items()}
    return service, dockerfile, tree, env


@pytest.mark.parametrize("name", BUILT)
def test_every_compose_service_command_starts_from_the_files_its_image_contains(name, tmp_path):
    service, dockerfile, tree, env = compose_image(name, tmp_path)
    start_from_tree(service.get("command") or image_cmd(dockerfile), tree, env)


@pytest.mark.parametrize("name", BUILT)
def test_every_compose_healthcheck_needs_only_what_its_image_contains(name, tmp_path):
    service, dockerfile, tree, env = compose_image(name, tmp_path)
    start_from_tree(healthcheck_command(service, dockerfile), tree, env)


def test_the_webhooks_service_is_built_from_an_image_that_has_the_webhook_worker():
    service = compose_services()["webhooks"]
    assert dockerfile_of(service).name == "webhooks.Dockerfile"
    assert service["command"] == ["python", "-m", "workers.webhooks"]


def kubernetes_containers() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        if path.name.endswith(".template.yaml"):
            continue  # rendered into worker-<model>.yaml, checked there
        for doc in yaml.safe_load_all(path.read_text()):
            pod = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            found += [(f"{doc['metadata']['name']}/{c['name']}", c) for c in pod.get("containers", [])]
    return found


INFERQ_CONTAINERS = [(n, c) for n, c in kubernetes_containers() if c["image"].split(":")[0] in IMAGES]


def container_env(container: dict) -> dict[str, str]:
    """The container's env as Kubernetes resolves it: secrets and fields stand-ins, $(VAR) expanded."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"])
        elif "secretKeyRef" in item["valueFrom"]:
            env[item["name"]] = "whsec_c2VjcmV0" if "webhook" in item["name"].lower() else "secret"
        else:
            env[item["name"]] = "pod-0"
    return env


@pytest.mark.parametrize("container", [c for _, c in INFERQ_CONTAINERS], ids=[n for n, _ in INFERQ_CONTAINERS])
def test_every_kubernetes_container_command_starts_from_the_files_its_image_contains(container, tmp_path):
    dockerfile = DOCKER / f"{IMAGES[container['image'].split(':')[0]]}.Dockerfile"
    tree = build_tree(dockerfile, tmp_path / "app")
    command = (container.get("command") or image_cmd(dockerfile)) + container.get("args", [])
    start_from_tree(command, tree, image_env(dockerfile, tree) | container_env(container))


@pytest.mark.parametrize("image", ["web", "webhooks"])
def test_the_web_and_webhook_images_carry_and_load_no_tensorflow(image, tmp_path):
    dockerfile = DOCKER / f"{image}.Dockerfile"
    requirements = [ROOT / s for sources, _ in copies(dockerfile) for s in sources if s.startswith("requirements/")]
    assert requirements and not any(TENSORFLOW & requirement_names(path) for path in requirements)
    installed = [rest for keyword, rest in instructions(dockerfile) if keyword == "RUN" and "pip install" in rest]
    assert installed and not any(re.search(r"tensorflow|keras", run, re.I) for run in installed)
    tree = build_tree(dockerfile, tmp_path / "app")
    assert not (tree / "workers" / "inference").exists()
    env = image_env(dockerfile, tree) | {"INFERQ_REDIS_URL": "redis://:secret@redis:6379/0"}
    report = start_from_tree(image_cmd(dockerfile), tree, env)
    assert report["tensorflow"] == []


def test_a_tree_missing_a_module_is_caught(tmp_path):
    """The check has teeth: the webhook image without shared/ cannot start its worker."""
    tree = build_tree(DOCKER / "webhooks.Dockerfile", tmp_path / "app")
    shutil.rmtree(tree / "shared")
    with pytest.raises(AssertionError, match="No module named 'shared"):
        start_from_tree(["python", "-m", "workers.webhooks"], tree, {"INFERQ_REDIS_URL": "redis://redis:6379/0"})


def test_the_probe_cannot_see_the_checkout(tmp_path):
    """An empty tree imports nothing of the project, so passing runs did use only the tree."""
    (tmp_path / "app").mkdir()
    with pytest.raises(AssertionError, match="No module named 'web"):
        start_from_tree(["celery", "-A", "web.wsgi"], tmp_path / "app", dict(os.environ))
