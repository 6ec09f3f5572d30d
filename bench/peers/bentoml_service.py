"""Optional peer 3: BentoML with adaptive batching, 2 workers x 1 thread (``make bench PEERS=bentoml``).

Runs from its own virtual environment (``make bench-bentoml-env``), never from ``make test``.
It takes the same request bodies as inferq: JSON ``{"instances": ...}`` for digits, and for
MobileNetV2 the same JPEG upload (multipart/form-data, one file part named ``image``), read as
``PIL.Image`` (BentoML's image input) and turned into the tensor exactly as inferq's
``preprocessing.image`` does. BentoML has no raw ``.npy`` body, so the upload is also its best
binary form.
"""
from __future__ import annotations

import bentoml
import numpy as np
from PIL.Image import Image


@bentoml.service(workers=2, threads=1)
class Inference:
    def __init__(self) -> None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        from bench.peers.common import load_models

        self.models = load_models()

    @bentoml.api(route="/predict/digits", batchable=True, max_batch_size=64, max_latency_ms=1000)
    def digits(self, instances: np.ndarray) -> np.ndarray:
        return np.asarray(self.models["digits"](instances.astype(np.float32), training=False))

    @bentoml.api(route="/predict/mobilenet", batchable=True, max_batch_size=16, max_latency_ms=5000)
    def mobilenet(self, image: list[Image]) -> np.ndarray:
        from bench.peers.common import image_tensor

        batch = np.stack([image_tensor(one) for one in image])
        return np.asarray(self.models["mobilenet"](batch, training=False))
