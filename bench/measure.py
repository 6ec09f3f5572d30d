"""The measurements ``bench.run`` takes in subprocesses of this interpreter, each logged as one line.

The load generator against a URL (``bench.loadgen``), the raw limit of each model in-process
(``bench.raw``) and the cost of publishing a job on a scratch Redis (``bench.publish``): nothing
measured shares the driver's process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from launcher import binaries
from shared import keys
from shared.settings import ServerSource
from tests.integration.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"


def tree_cpu_s(root: int, group: Callable[[str], str] = lambda command: "all") -> dict[str, float]:
    """CPU seconds (user + system) spent so far by ``root`` and every process below it, summed
    by ``group(command line)``."""
    children: dict[int, list[int]] = defaultdict(list)
    ticks: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        children[int(fields[1])].append(int(entry.name))
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    totals: dict[str, float] = defaultdict(float)
    todo = [root]
    while todo:
        pid = todo.pop()
        totals[group(commands.get(pid, ""))] += ticks.get(pid, 0) / os.sysconf("SC_CLK_TCK")
        todo.extend(children[pid])
    return totals


def finished_jobs(client) -> int:
    """Jobs the stack has ended so far, from its own metrics."""
    return sum(int(count) for count in client.hvals(keys.METRICS_FINISHED))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadgen(url, flow, model, payload, instances, concurrency, duration, header_length: int = 0,
            warmup: float = 2.0) -> dict:
    command = [sys.executable, "-m", "bench.loadgen", "--url", url, "--flow", flow, "--model", model,
               "--payload", str(payload), "--instances", str(instances), "--concurrency", str(concurrency),
               "--duration", str(duration), "--header-length", str(header_length), "--warmup", str(warmup)]
    result = json.loads(subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    log(f"{flow:>7} {model:>9} x{instances:<3} c={concurrency:<3} {result['jobs_per_s']:8.1f} jobs/s "
        f"p50 {result['p50_ms'] or 0:7.1f} ms  p99 {result['p99_ms'] or 0:7.1f} ms  errors {result['errors']}")
    return result


def raw_limits(paths: dict[str, Path], digits_batch: int, seconds: float) -> dict:
    out = {}
    for name, batches, threads, rss_batch in (("digits", "1,32,128,512", 1, digits_batch),
                                               ("mobilenet", "1,8,16,32", 0, 16)):
        command = [sys.executable, "-m", "bench.raw", str(paths[name]), "--batches", batches,
                   "--threads", str(threads), "--seconds", str(seconds), "--rss-batch", str(rss_batch)]
        out[name] = json.loads(subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                                              check=True).stdout.strip().splitlines()[-1])
        log(f"raw {name}: best {out[name]['best_samples_per_s']:.0f} samples/s at batch "
            f"{out[name]['best_batch']}; model.predict batch 1: {out[name]['predict_batch1']:.1f}/s")
    return out


def publish_costs() -> dict:
    """send_task against the one-script submit, on a scratch Redis with the same AOF policy."""
    port = free_port()
    redis_server = binaries.find("redis-server", ServerSource.AUTO)
    assert redis_server is not None
    server = subprocess.Popen([redis_server.path, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "yes", "--appendfsync", "always", "--dir", str(WORK)],
                              stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        out = subprocess.run([sys.executable, "-m", "bench.publish", f"redis://127.0.0.1:{port}/0"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        costs = json.loads(out)
        log(f"publish: {costs}")
        return costs
    finally:
        server.terminate()
        server.wait(10)
