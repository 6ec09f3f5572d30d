"""Train the demo model: a small CNN on scikit-learn's bundled ``load_digits``.

Input is one 8x8 image with pixel values 0..16, exactly as ``load_digits().images[i]``;
scaling happens inside the model. Output is 10 softmax probabilities. Prints held-out
accuracy and refuses to save a model below 0.95. Nothing is downloaded.

    python scripts/train_digits.py [--out models/digits/1/model.keras]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MIN_ACCURACY = 0.95
SEED = 7


def build_model():
    """The CNN; the Rescaling layer makes raw 0..16 pixels the model's input."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=(8, 8), dtype="float32", name="image"),
        layers.Rescaling(1.0 / 16.0),
        layers.Reshape((8, 8, 1)),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.2),
        layers.Dense(10, activation="softmax", name="probabilities"),
    ], name="digits")


def train(out: Path) -> float:
    """Fit on 80% of load_digits, evaluate on the held-out 20%, save to ``out``."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(SEED)
    digits = load_digits()
    x = digits.images.astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.2, random_state=SEED, stratify=digits.target)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=40, batch_size=32, verbose=0, validation_split=0.1)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"held-out accuracy: {accuracy:.4f} on {len(x_test)} images")
    if accuracy < MIN_ACCURACY:
        sys.exit(f"accuracy {accuracy:.4f} is below {MIN_ACCURACY}; not saving")
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    print(f"saved {out}")
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/digits/1/model.keras"))
    train(parser.parse_args().out)


if __name__ == "__main__":
    main()
