"""Writes the fuzzer's seed corpus: a few tiny, valid model files covering every part of the
format (dense-only, conv + pooling, trained with optimizer state, every layer kind, class
names, a weights-only file). Deterministic, so re-running it gives the committed files.

    python fuzz/make_corpus.py [fuzz/corpus]
"""

from __future__ import annotations

import os
import sys

import numpy as np

import cnnx
from cnnx import Sequential, layers as L, optimizers


def models() -> dict[str, tuple[Sequential, str]]:
    cnnx.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    dense = Sequential([L.Input((6,)), L.Dense(4, activation="relu"), L.Dense(2)], name="dense_only")

    conv = Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3, padding="same", activation="relu"), L.MaxPooling2D(2),
                       L.Flatten(), L.Dense(3, activation="softmax")], name="conv_pool")
    conv.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    conv.fit(rng.random((8, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)
    conv.class_names = ["a", "b", "c"]

    schedule = optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    zoo = Sequential([
        L.Input((8, 8, 2)), L.Rescaling(1 / 255), L.RandomFlip(seed=1), L.RandomRotation(0.1, seed=2),
        L.RandomTranslation(0.1, 0.1, seed=3), L.RandomZoom(0.1, seed=4), L.RandomContrast(0.1, seed=5),
        L.Resizing(6, 6), L.Conv2D(2, (2, 3), strides=(1, 2), dilation_rate=1, kernel_regularizer="l2"),
        L.BatchNormalization(), L.ReLU(max_value=6.0), L.AveragePooling2D(2, strides=1, padding="same"),
        L.LeakyReLU(), L.ELU(), L.Dropout(0.25, seed=6), L.GlobalMaxPooling2D(), L.Reshape((1, 2)),
        L.Flatten(), L.Dense(2), L.Activation("sigmoid"),
    ], name="every_layer")
    zoo.compile(optimizers.SGD(schedule, momentum=0.9, nesterov=True), "binary_crossentropy", metrics=["accuracy"])
    zoo.fit(rng.random((4, 8, 8, 2), dtype=np.float32), rng.integers(0, 2, (4, 2)).astype(np.float32),
            epochs=1, verbose=0)

    gap = Sequential([L.Input((4, 4, 3)), L.Conv2D(2, 1), L.GlobalAveragePooling2D(), L.Softmax()], name="gap")
    gap.compile(optimizers.RMSprop(momentum=0.5), "categorical_crossentropy")
    gap.fit(rng.random((4, 4, 4, 3), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]], epochs=1, verbose=0)

    return {"dense_only": (dense, "model"), "conv_pool_adam": (conv, "model"), "every_layer_sgd": (zoo, "model"),
            "gap_rmsprop": (gap, "model"), "conv_weights_only": (conv, "weights")}


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, (model, kind) in models().items():
        path = os.path.join(out, f"{name}.cnnx")
        (model.save if kind == "model" else model.save_weights)(path)
        size = os.path.getsize(path)
        assert size < 50_000, f"{path} is {size} bytes; seeds must stay small"
        print(f"{path}: {size} bytes")


if __name__ == "__main__":
    main()
