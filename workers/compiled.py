"""A loaded Keras model wrapped in a compiled, fixed-signature ``tf.function``.

Keras 3's ``model.predict`` rebuilds a data pipeline on every call (about 80 ms here), so
workers call a traced function instead and warm it up before taking jobs.
"""
from __future__ import annotations

import io

import numpy as np
import orjson
import tensorflow as tf

from shared.signatures import ModelSignature, TensorSpec


class NonFiniteOutput(ValueError):
    """The model produced NaN or Infinity; the job fails instead of answering invalid JSON."""


class CompiledModel:
    """One model version, ready to predict batches of instances."""

    def __init__(self, name: str, version: int, keras_model):
        self.model = keras_model
        self.signature = ModelSignature(
            name=name,
            version=version,
            inputs=tuple(_spec(t) for t in keras_model.inputs),
            outputs=tuple(_spec(t) for t in keras_model.outputs),
        )
        if len(self.signature.inputs) != 1:
            raise ValueError(f"{name} v{version} has {len(self.signature.inputs)} inputs; "
                             "only single-input models are served")
        spec = self.signature.inputs[0]
        self.input_dtype = np.dtype(spec.dtype)
        self._forward = tf.function(
            lambda batch: keras_model(batch, training=False),
            input_signature=[tf.TensorSpec(shape=spec.shape, dtype=spec.dtype)],
        )

    def warm_up(self, max_batch_size: int = 1) -> None:
        """Trace and run at batch 1 and the largest batch, so no job pays for first use."""
        for size in sorted({1, max_batch_size}):
            shape = (size, *(1 if d is None else d for d in self.signature.inputs[0].shape[1:]))
            self.predict(np.zeros(shape, dtype=self.input_dtype))

    def predict(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one forward pass; one array per model output, each with a row per instance."""
        outputs = self._forward(tf.convert_to_tensor(batch, dtype=self.input_dtype))
        if isinstance(outputs, dict):
            return [outputs[key].numpy() for key in sorted(outputs)]
        if isinstance(outputs, (list, tuple)):
            return [o.numpy() for o in outputs]
        return [outputs.numpy()]

    def to_batch(self, job) -> np.ndarray:
        """A job's validated input (JSON instances or a .npy array) in the model's dtype."""
        if job.input_npy is not None:
            array = np.load(io.BytesIO(job.input_npy), allow_pickle=False)
            return array.astype(self.input_dtype, copy=False)
        return np.asarray(orjson.loads(job.instances_json), dtype=self.input_dtype)

    def encode(self, arrays: list[np.ndarray]) -> bytes:
        """Per-instance predictions as JSON: nested lists, or ``{output: ...}`` per instance."""
        for array in arrays:
            if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
                raise NonFiniteOutput("the model produced NaN or Infinity in its output")
        if len(arrays) == 1:
            return orjson.dumps(np.ascontiguousarray(arrays[0]), option=orjson.OPT_SERIALIZE_NUMPY)
        names = [spec.name for spec in self.signature.outputs]
        per_instance = [
            {name: array[i].tolist() for name, array in zip(names, arrays)}
            for i in range(len(arrays[0]))
        ]
        return orjson.dumps(per_instance)


def _spec(tensor) -> TensorSpec:
    """Name a tensor after the layer that made it: KerasTensor names are auto-numbered."""
    history = getattr(tensor, "_keras_history", None)
    name = getattr(getattr(history, "operation", None), "name", None) or tensor.name
    return TensorSpec(name=name, shape=tuple(tensor.shape), dtype=str(tensor.dtype))
