"""The model file formats a version directory may hold, each loaded into one callable.

    models/<name>/<version>/model.keras       Keras 3 (``model.save``)
    models/<name>/<version>/saved_model.pb    TF SavedModel (``model.export``), its ``serving_default``
    models/<name>/<version>/model.h5          legacy Keras HDF5

Every format ends up as a ``Servable``: named input and output specs read from the model,
and a compiled forward pass that takes one array per input and returns one per output.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.signatures import TensorSpec

KERAS_FILE = "model.keras"
SAVED_MODEL_FILE = "saved_model.pb"
H5_SUFFIXES = (".h5", ".hdf5")
SERVING_SIGNATURE = "serving_default"


class UnsupportedModel(ValueError):
    """The directory holds no model inferq can serve, or one it cannot call."""


@dataclass
class Servable:
    """A loaded model: what it takes and returns, and a compiled forward pass."""

    format: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    forward: Callable[[list[np.ndarray]], list[np.ndarray]]
    loaded: object = None
    """What was loaded: a Keras model or a TF SavedModel; kept so its variables stay alive."""


def find_artifact(version_dir: Path) -> tuple[str, Path] | None:
    """``(format, path)`` of the model in a version directory, or None when it holds none."""
    if (version_dir / KERAS_FILE).is_file():
        return "keras", version_dir / KERAS_FILE
    if (version_dir / SAVED_MODEL_FILE).is_file():
        return "saved_model", version_dir
    for candidate in sorted(version_dir.iterdir()):
        if candidate.suffix in H5_SUFFIXES and candidate.is_file():
            return "h5", candidate
    return None


def load(version_dir: Path) -> Servable:
    """Load whatever model ``version_dir`` holds; ``UnsupportedModel`` when none is there."""
    found = find_artifact(version_dir)
    if found is None:
        raise UnsupportedModel(f"{version_dir} holds no {KERAS_FILE}, {SAVED_MODEL_FILE} or .h5 file")
    kind, path = found
    if kind == "saved_model":
        return _saved_model(path)
    import keras

    return from_keras(keras.saving.load_model(path, compile=False), kind)


def from_keras(model, kind: str = "keras") -> Servable:
    """Wrap a Keras model in a fixed-signature ``tf.function``.

    Keras 3's ``model.predict`` rebuilds a data pipeline on every call (about 80 ms here),
    so workers call a traced function instead.
    """
    import tensorflow as tf

    inputs = tuple(_keras_spec(t) for t in model.inputs)
    outputs = tuple(_keras_spec(t) for t in model.outputs)
    signature = [tf.TensorSpec(shape=s.shape, dtype=s.dtype) for s in inputs]
    if len(inputs) == 1:
        traced = tf.function(lambda x: model(x, training=False), input_signature=signature)
    else:
        traced = tf.function(lambda *xs: model(list(xs), training=False), input_signature=signature)

    def forward(arrays: list[np.ndarray]) -> list[np.ndarray]:
        result = traced(*(tf.convert_to_tensor(a, dtype=s.dtype) for a, s in zip(arrays, inputs, strict=True)))
        if isinstance(result, dict):
            return [result[key].numpy() for key in sorted(result)]
        if isinstance(result, (list, tuple)):
            return [r.numpy() for r in result]
        return [result.numpy()]

    return Servable(kind, inputs, outputs, forward, loaded=model)


def _saved_model(directory: Path) -> Servable:
    """A SavedModel's ``serving_default`` signature: named inputs in, named outputs out."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(directory))
    if SERVING_SIGNATURE not in loaded.signatures:
        raise UnsupportedModel(f"{directory} has no {SERVING_SIGNATURE!r} signature "
                               f"(it has {sorted(loaded.signatures) or 'none'})")
    function = loaded.signatures[SERVING_SIGNATURE]
    _, named_inputs = function.structured_input_signature
    # A signature's inputs are a mapping with no inherent order: sort them, so every load
    # publishes the same signature.
    inputs = tuple(TensorSpec(name, tuple(spec.shape.as_list()), spec.dtype.name)
                   for name, spec in sorted(named_inputs.items()))
    outputs = tuple(TensorSpec(name, tuple(spec.shape.as_list()), spec.dtype.name)
                    for name, spec in sorted(function.structured_outputs.items()))

    def forward(arrays: list[np.ndarray]) -> list[np.ndarray]:
        feed = {spec.name: tf.convert_to_tensor(a, dtype=spec.dtype) for a, spec in zip(arrays, inputs, strict=True)}
        result = function(**feed)
        return [result[spec.name].numpy() for spec in outputs]

    servable = Servable("saved_model", inputs, outputs, forward)
    servable.loaded = loaded  # keeps the loaded object (and its variables) alive
    return servable


def _keras_spec(tensor) -> TensorSpec:
    """Name a tensor after the layer that made it: KerasTensor names are auto-numbered."""
    history = getattr(tensor, "_keras_history", None)
    name = getattr(getattr(history, "operation", None), "name", None) or tensor.name
    return TensorSpec(name=name, shape=tuple(tensor.shape), dtype=str(tensor.dtype))
