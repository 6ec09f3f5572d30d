"""One loaded model version, ready to turn stored job inputs into predictions.

Holds the compiled forward pass (``model_formats.Servable``) with its ``inferq.yaml``
config, and does the two conversions around it: a job's stored input to arrays, and
output arrays to the JSON stored on the job (plus top-k labels when the model has labels).
"""
from __future__ import annotations

import io

import numpy as np
import orjson

from shared.signatures import ModelSignature
from workers.inference.model_config import ModelConfig
from workers.inference.model_formats import Servable, from_keras


class NonFiniteOutput(ValueError):
    """The model produced NaN or Infinity; the job fails instead of answering invalid JSON."""


class CompiledModel:
    """One model version: single-input models take an array, multi-input ones a list."""

    def __init__(self, name: str, version: int, model, config: ModelConfig | None = None):
        self.servable: Servable = model if isinstance(model, Servable) else from_keras(model)
        self.config = config
        public = config.public() if config is not None else {}
        self.signature = ModelSignature(
            name=name, version=version, inputs=self.servable.inputs, outputs=self.servable.outputs,
            config={**public, "format": self.servable.format},
        )
        self.input_dtypes = [np.dtype(spec.dtype) for spec in self.signature.inputs]
        self.multi_input = len(self.input_dtypes) > 1
        self.labels = config.labels if config is not None else ()

    @property
    def model(self):
        """The Keras model (or loaded SavedModel) behind this version."""
        return self.servable.loaded

    def warm_up(self, max_batch_size: int = 1) -> None:
        """Trace and run at batch 1 and the largest batch, so no job pays for first use."""
        for size in sorted({1, max_batch_size}):
            arrays = [np.zeros((size, *(1 if d is None else d for d in spec.instance_shape)), dtype=dtype)
                      for spec, dtype in zip(self.signature.inputs, self.input_dtypes, strict=True)]
            outputs = self.predict(arrays if self.multi_input else arrays[0])
            for output, spec in zip(outputs, self.signature.outputs, strict=True):
                if len(output) != size:
                    raise ValueError(f"output {spec.name} has {len(output)} rows for a batch of {size}: "
                                     "the model's first axis must be the batch")

    def predict(self, batch) -> list[np.ndarray]:
        """Run one forward pass; one array per model output, each with a row per instance."""
        return self.servable.forward(batch if self.multi_input else [batch])

    def to_batch(self, job):
        """A job's validated input (JSON instances, named columns, or .npy) in the model's dtypes."""
        if job.input_npy is not None:
            array = np.load(io.BytesIO(job.input_npy), allow_pickle=False)
            return array.astype(self.input_dtypes[0], copy=False)
        stored = orjson.loads(job.instances_json)
        if isinstance(stored, dict):  # named inputs, stored as columns by web
            arrays = [np.asarray(stored[spec.name], dtype=dtype)
                      for spec, dtype in zip(self.signature.inputs, self.input_dtypes, strict=True)]
            return arrays if self.multi_input else arrays[0]
        return np.asarray(stored, dtype=self.input_dtypes[0])

    def encode(self, arrays: list[np.ndarray]) -> bytes:
        """Per-instance predictions as JSON: nested lists, or ``{output: ...}`` per instance."""
        for array in arrays:
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                raise NonFiniteOutput("the model produced NaN or Infinity in its output")
        if len(arrays) == 1:
            return orjson.dumps(np.ascontiguousarray(arrays[0]), option=orjson.OPT_SERIALIZE_NUMPY)
        names = [spec.name for spec in self.signature.outputs]
        per_instance = [
            {name: array[i].tolist() for name, array in zip(names, arrays, strict=True)}
            for i in range(len(arrays[0]))
        ]
        return orjson.dumps(per_instance)

    def top_labels(self, arrays: list[np.ndarray]) -> bytes | None:
        """``[[{label, score}, ...] per instance]``: the top-k of the first output, or None.

        Only for models whose ``inferq.yaml`` names one label per score of the first output.
        """
        if not self.labels:
            return None
        scores = arrays[0].reshape(len(arrays[0]), -1)
        if scores.shape[1] != len(self.labels):
            return None
        k = min(self.config.top_k, len(self.labels))
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return orjson.dumps([[{"label": self.labels[i], "score": float(row[i])} for i in top]
                             for row, top in zip(scores, best, strict=True)])
