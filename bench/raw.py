"""The raw limit: a model's throughput in-process, with no queue, HTTP or JSON in the way.

Measures ``model.predict`` at batch 1 (the tutorial's call), and the same compiled
``tf.function`` the workers use at several batch sizes; reports the best batch. Also
reports the RSS of this bare process after loading and warming the model, the yardstick
for a worker's memory. Prints one JSON object.

    python -m bench.raw MODEL.keras --batches 1,8,16,32 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def samples_per_s(call, batch, seconds: float, repeats: int = 5) -> float:
    """Median over ``repeats`` windows of samples/s for ``call(batch)``."""
    call(batch)
    rates = []
    for _ in range(repeats):
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / repeats:
            call(batch)
            count += len(batch)
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batches", default="1,8,16,32,64")
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0: TF default)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per batch size")
    parser.add_argument("--rss-batch", type=int, default=32, help="batch size warmed before reading RSS")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from workers.inference.compiled import CompiledModel

    compiled = CompiledModel("bench", 1, keras.saving.load_model(args.model, compile=False))
    shape = compiled.signature.inputs[0].instance_shape
    rng = np.random.default_rng(0)

    def batch_of(size):
        return rng.uniform(0, 16, size=(size, *shape)).astype(np.float32)

    compiled.predict(batch_of(args.rss_batch))
    bare_rss = rss_mib()
    result = {"model": args.model, "threads": args.threads, "bare_rss_mib": bare_rss,
              "predict_batch1": samples_per_s(lambda b: compiled.model.predict(b, verbose=0), batch_of(1),
                                              args.seconds),
              "compiled": {}}
    for size in [int(b) for b in args.batches.split(",")]:
        result["compiled"][size] = samples_per_s(compiled.predict, batch_of(size), args.seconds)
    best = max(result["compiled"], key=result["compiled"].get)
    result["best_batch"], result["best_samples_per_s"] = best, result["compiled"][best]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
