"""Dynamic batching: stack the instances of many jobs, run forward passes of at most
``max_batch_size``, and split the outputs back to their jobs.

Pure numpy logic with the model passed in, so it is unit-tested without TensorFlow.
A forward pass that raises is retried job by job, so a failing instance fails only its job.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Predict = Callable[[np.ndarray], list[np.ndarray]]


@dataclass(frozen=True)
class BatchPolicy:
    """How a worker gathers jobs into forward passes."""

    max_batch_size: int = 32
    """Most instances in one forward pass; larger jobs are split across passes."""
    max_delay_s: float = 0.005
    """How long a non-adaptive batch waits for more jobs once it holds one."""
    adaptive: bool = True
    """Do not wait when the queue is empty: run what is there at once."""


@dataclass
class Outcome:
    """What happened to one job in a batch."""

    outputs: list[np.ndarray] | None = None
    error: Exception | None = None
    batch_size: int = 0
    inference_s: float = 0.0
    started_at: float = field(default_factory=time.time)


def run_batched(predict: Predict, inputs: list, max_batch_size: int) -> list[Outcome]:
    """One ``Outcome`` per input, in order; failures are isolated to the jobs that cause them."""
    try:
        return _run_together(predict, inputs, max_batch_size)
    except Exception as exc:
        if len(inputs) == 1:
            return [Outcome(error=exc)]
        return [run_batched(predict, [single], max_batch_size)[0] for single in inputs]


def _run_together(predict: Predict, inputs: list, max_batch_size: int) -> list[Outcome]:
    """Stack, run in chunks, split back. A job's input is one array, or a list of arrays
    (one per model input, all with the same first axis) for multi-input models."""
    multi = not isinstance(inputs[0], np.ndarray)
    parts = [list(x) if multi else [x] for x in inputs]
    sizes = [len(p[0]) for p in parts]
    stacked = [p[0] if len(parts) == 1 else np.concatenate(p) for p in zip(*parts, strict=True)]
    total = len(stacked[0])
    chunk_outputs: list[list[np.ndarray]] = []
    chunks: list[tuple[int, int, float, float]] = []  # start, stop, began, seconds
    for start in range(0, total, max_batch_size):
        stop = min(start + max_batch_size, total)
        began = time.time()
        tick = time.perf_counter()
        chunk = [array[start:stop] for array in stacked]
        outputs = predict(chunk if multi else chunk[0])
        seconds = time.perf_counter() - tick
        for output in outputs:
            if len(output) != stop - start:
                raise ValueError(f"the model returned {len(output)} rows for {stop - start} instances")
        chunk_outputs.append(outputs)
        chunks.append((start, stop, began, seconds))
    merged = [np.concatenate(parts) if len(parts) > 1 else parts[0] for parts in zip(*chunk_outputs, strict=True)]
    outcomes = []
    offset = 0
    for size in sizes:
        end = offset + size
        mine = [c for c in chunks if c[0] < end and c[1] > offset]
        outcomes.append(Outcome(
            outputs=[output[offset:end] for output in merged],
            batch_size=mine[0][1] - mine[0][0],
            inference_s=sum(c[3] for c in mine),
            started_at=mine[0][2],
        ))
        offset = end
    return outcomes
