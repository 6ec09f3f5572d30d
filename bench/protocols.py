"""``make bench`` (part): the same tensor through three front doors of one stack, side by side.

Open Inference Protocol v2 infer with binary tensors, TF Serving's ``:predict`` with JSON
rows, and the native job API (``.npy`` body, ``Prefer: wait``) on digits and MobileNetV2, at
1 and 32 requests in flight. Each is a job through the same queue and batching; what differs
is how the tensor is carried and answered. Load goes to 127.0.0.1 only. Writes its section of
bench/RESULTS.md between markers, so the rest of the file is kept.
"""
from __future__ import annotations

import io
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import models as bench_models  # noqa: E402
from bench import sections  # noqa: E402
from bench.measure import WORK, loadgen, log  # noqa: E402
from tests.integration.stack import start_stack, stop_stack  # noqa: E402

START, END = "<!-- protocols:start -->", "<!-- protocols:end -->"
CONCURRENCY = (1, 32)
DURATION_S = 8.0
COMMAND = "make bench (python -m bench.protocols)"


def tensors() -> dict[str, np.ndarray]:
    """One instance per model: a digit from load_digits, and a random 224x224 RGB image."""
    from sklearn.datasets import load_digits

    return {"digits": load_digits().images[:1].astype(np.float32),
            "mobilenet": np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)}


def bodies(url: str, model: str, array: np.ndarray) -> dict[str, tuple[Path, int]]:
    """Request bodies carrying ``array``, per flow, with the v2 header's length (0: none)."""
    metadata = requests.get(f"{url}/v2/models/{model}", timeout=10).json()
    header = orjson.dumps({"inputs": [{"name": metadata["inputs"][0]["name"], "shape": list(array.shape),
                                       "datatype": "FP32", "parameters": {"binary_data_size": array.nbytes}}],
                           "parameters": {"binary_data_output": True}})
    paths = {flow: WORK / f"protocols-{model}.{flow}" for flow in ("v2", "predict", "inferq")}
    paths["v2"].write_bytes(header + array.tobytes())
    paths["predict"].write_bytes(orjson.dumps({"instances": array.tolist()}))
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    paths["inferq"] = paths["inferq"].with_suffix(".npy")
    paths["inferq"].write_bytes(buffer.getvalue())
    return {"v2": (paths["v2"], len(header)), "predict": (paths["predict"], 0), "inferq": (paths["inferq"], 0)}


def measure(model: str, repo: Path, array: np.ndarray) -> list[dict]:
    """Start a stack for ``model`` and run every flow at every concurrency against it."""
    base = WORK / f"stack-protocols-{model}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    shutil.copytree(repo / model, base / "models" / model)
    stack = start_stack(base, base / "models", {model}, {"INFERQ_MAX_BATCH_SIZE": "32",
                                                          "INFERQ_TF_INTRA_OP_THREADS": "1"})
    try:
        results = []
        for flow, (payload, header_length) in bodies(stack.url, model, array).items():
            for concurrency in CONCURRENCY:
                result = loadgen(stack.url, flow, model, payload, 1, concurrency, DURATION_S, header_length)
                results.append({**result, "bytes": payload.stat().st_size})
        return results
    finally:
        stop_stack(stack)


def render(results: list[dict]) -> str:
    """The section: one row per model, flow and concurrency, with the ratio to :predict JSON."""
    rows = [START, "## Protocols: v2 binary infer vs :predict JSON vs the native job API", "",
            f"Produced by `{COMMAND}` on {time.strftime('%Y-%m-%d')}, one stack per model, {DURATION_S:g} s "
            "per point (median of one-second windows), one instance per request, the same tensor in each body. "
            "*vs :predict*: jobs/s over `:predict` JSON's at the same concurrency.", "",
            "| model | front door | request bytes | in flight | jobs/s | p50 ms | p99 ms | vs :predict | errors |",
            "|---|---|---|---|---|---|---|---|---|"]
    names = {"v2": "v2 infer, binary", "predict": ":predict, JSON", "inferq": "job API, .npy + Prefer: wait"}
    for row in results:
        base = next(r for r in results if r["model"] == row["model"] and r["flow"] == "predict"
                    and r["concurrency"] == row["concurrency"])
        ratio = row["jobs_per_s"] / base["jobs_per_s"] if base["jobs_per_s"] else 0.0
        rows.append(f"| {row['model']} | {names[row['flow']]} | {row['bytes']} | {row['concurrency']} | "
                    f"{row['jobs_per_s']:.0f} | {row['p50_ms'] or 0:.1f} | {row['p99_ms'] or 0:.1f} | "
                    f"{ratio:.2f}x | {row['errors']} |")
    return "\n".join(rows + ["", END, ""])


def kept_section(results_md: Path) -> str:
    """This section of an existing RESULTS.md, markers included ('' if none)."""
    return sections.kept(results_md, START, END)


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    repo = WORK / "models"
    bench_models.build(repo)
    results = []
    for model, array in tensors().items():
        log(f"protocols {model}")
        results += measure(model, repo, array)
    sections.replace(ROOT / "bench" / "RESULTS.md", render(results), START, END)
    log("wrote the protocols section of bench/RESULTS.md")


if __name__ == "__main__":
    main()
