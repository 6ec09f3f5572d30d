"""inferq against the synchronous peers side by side: every system up at once, loaded in turn, round after round.

    .venv/bin/python -m bench.paired [--duration 6] [--rounds 3]

``bench.run`` measures the systems one after another, minutes apart, and on this shared machine
the speed of the cores drifts by tens of percent over minutes. Here inferq (one stack per model,
as ``bench.run`` configures them), BentoML and Ray Serve (when their environments are installed)
are all started first; then each round loads every system in turn, in a rotating order, with the
same body: one digit as JSON at 64 in flight, one image as the same JPEG upload at 32 in flight.
The ratio of a round compares runs seconds apart, and the figure reported is the median over
rounds of those ratios. It writes its section of bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import models as bench_models  # noqa: E402
from bench import sections  # noqa: E402
from bench.bodies import payloads  # noqa: E402
from bench.measure import WORK, loadgen, log  # noqa: E402
from bench.ray_peer import ray_server  # noqa: E402
from bench.run import bentoml_server, wait_for_workers  # noqa: E402
from tests.integration.stack import start_stack, stop_stack  # noqa: E402

START, END = "<!-- paired:start -->", "<!-- paired:end -->"
LOADS = (("digits", "digits", 64), ("mobilenet", "mobilenet-jpeg", 32))
"""(model, body, jobs in flight): each system's best region in ``bench.run``'s table."""
STACK_ENV = {"INFERQ_REDIS_APPENDFSYNC": "always", "INFERQ_WEB_WORKERS": "2", "INFERQ_TF_INTRA_OP_THREADS": "1",
             "INFERQ_AUTOSCALE": "false"}
MODEL_ENV = {"digits": {"INFERQ_MAX_BATCH_SIZE": "64"},
             "mobilenet": {"INFERQ_MAX_BATCH_SIZE": "16", "INFERQ_WORKERS_PER_MODEL": "2"}}
"""What ``bench.run`` gives each model's stack (MobileNetV2's batch is its usual raw best)."""
PEERS = {"bentoml": "BentoML", "ray": "Ray Serve"}


def kept_section(results_md: Path) -> str:
    """This section of an existing RESULTS.md, markers included ('' if none)."""
    return sections.kept(results_md, START, END)


@contextmanager
def inferq_stack(repo: Path, model: str):
    """One inferq stack serving ``model``, with every worker serving before it is used."""
    base = WORK / f"stack-paired-{model}"
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(repo / model, base / "models" / model)
    env = {**STACK_ENV, **MODEL_ENV[model]}
    stack = start_stack(base, base / "models", {model}, env)
    try:
        wait_for_workers(stack, model, int(env.get("INFERQ_WORKERS_PER_MODEL", "1")))
        yield stack.url
    finally:
        stop_stack(stack)


def start_all(stack: ExitStack, repo: Path, peers: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """{model: {system: (url, flow)}} for inferq and every peer of ``peers`` that started."""
    systems: dict[str, dict[str, tuple[str, str]]] = {model: {} for model, _, _ in LOADS}
    for model, _, _ in LOADS:
        systems[model]["inferq"] = (stack.enter_context(inferq_stack(repo, model)), "inferq")
    for name, server in (("bentoml", bentoml_server), ("ray", ray_server)):
        if name not in peers:
            continue
        url = stack.enter_context(server(repo))
        if url is not None:
            for model, _, _ in LOADS:
                systems[model][name] = (url, "sync")
    return systems


def measure(repo: Path, peers: list[str], duration: float, rounds: int) -> dict[str, dict[str, list[dict]]]:
    """{model: {system: the load generator's result per round}}, the systems of a round loaded in a rotating order."""
    bodies = payloads()
    with ExitStack() as stack:
        systems = start_all(stack, repo, peers)
        for model, body, _ in LOADS:  # the first requests trace the models
            for url, flow in systems[model].values():
                loadgen(url, flow, model, bodies[body][0], 1, 4, 2)
        found: dict[str, dict[str, list[dict]]] = {m: {s: [] for s in systems[m]} for m in systems}
        for number in range(rounds):
            log(f"round {number + 1} of {rounds}")
            for model, body, in_flight in LOADS:
                names = list(systems[model])
                for name in names[number % len(names):] + names[:number % len(names)]:
                    url, flow = systems[model][name]
                    result = loadgen(url, flow, model, bodies[body][0], 1, in_flight, duration)
                    found[model][name].append(result)
    return found


def render(found: dict[str, dict[str, list[dict]]], command: str, rounds: int) -> str:
    lines = [START, "## inferq and the synchronous peers, side by side", "",
             f"Produced by `{command}` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, {os.cpu_count()} CPUs): "
             "every system up at once, each round loading them in turn (in a rotating order) with the same body. "
             "*inferq vs peer* is the median over the rounds of inferq's jobs/s over the peer's in the same round "
             f"({rounds} rounds); the goal is at least 1x.", "",
             "| model | body | in flight | system | jobs/s per round | median | errors | inferq vs peer | goal |",
             "|---|---|---|---|---|---|---|---|---|"]
    for model, _, in_flight in LOADS:
        ours = [r["jobs_per_s"] for r in found[model]["inferq"]]
        for name, results in found[model].items():
            rates = [r["jobs_per_s"] for r in results]
            versus, met = "", ""
            if name != "inferq":
                ratio = statistics.median(a / b if b else float("inf") for a, b in zip(ours, rates, strict=True))
                versus, met = f"{ratio:.2f}x", "met" if ratio >= 1 else "not met"
            lines.append(f"| {model} | {'JSON' if model == 'digits' else 'JPEG upload'} | {in_flight} | "
                         f"{PEERS.get(name, name)} | {', '.join(f'{r:.0f}' for r in rates)} | "
                         f"{statistics.median(rates):.0f} | {sum(r['errors'] for r in results)} | {versus} | {met} |")
    return "\n".join([*lines, END]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=6.0, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers", default="bentoml,ray", help="comma list of peers to start beside inferq")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    repo = WORK / "models"
    bench_models.build(repo)
    found = measure(repo, args.peers.split(","), args.duration, max(1, args.rounds))
    command = f"make bench PEERS={args.peers} (.venv/bin/python -m bench.paired --duration {args.duration:g} " \
              f"--rounds {args.rounds} --peers {args.peers})"
    section = render(found, command, args.rounds)
    sections.replace(ROOT / "bench" / "RESULTS.md", section, START, END)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
