"""Writes the fuzzer's seed corpus: a few tiny, valid model files covering every part of the
format (dense-only, conv + pooling, trained with optimizer state, every layer kind, class
names, a weights-only file; format version 2: a functional model with merge layers, a frozen
layer and a layer used twice, and nested models), and its dictionary fuzz/cnnx.dict (the format's keys and names,
so mutations can swap one for another). Deterministic: re-running it gives the committed files.

    python fuzz/make_corpus.py [fuzz/corpus]
"""

from __future__ import annotations

import os
import sys

import numpy as np

import cnnx
from cnnx import Sequential, optimizers
from cnnx import layers as L


def models() -> dict[str, tuple[Sequential, str]]:
    cnnx.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    dense = Sequential([L.Input((6,)), L.Dense(4, activation="relu"), L.Dense(2)], name="dense_only")

    conv = Sequential(
        [
            L.Input((6, 6, 1)),
            L.Conv2D(2, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ],
        name="conv_pool",
    )
    conv.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    conv.fit(rng.random((8, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, 8), epochs=1, batch_size=4, verbose=0)
    conv.class_names = ["a", "b", "c"]

    schedule = optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    zoo = Sequential(
        [
            L.Input((8, 8, 2)),
            L.Rescaling(1 / 255),
            L.RandomFlip(seed=1),
            L.RandomRotation(0.1, seed=2),
            L.RandomTranslation(0.1, 0.1, seed=3),
            L.RandomZoom(0.1, seed=4),
            L.RandomContrast(0.1, seed=5),
            L.Resizing(6, 6),
            L.Conv2D(2, (2, 3), strides=(1, 2), dilation_rate=1, kernel_regularizer="l2"),
            L.BatchNormalization(),
            L.ReLU(max_value=6.0),
            L.AveragePooling2D(2, strides=1, padding="same"),
            L.LeakyReLU(),
            L.ELU(),
            L.Dropout(0.25, seed=6),
            L.GlobalMaxPooling2D(),
            L.Reshape((1, 2)),
            L.Flatten(),
            L.Dense(2),
            L.Activation("sigmoid"),
        ],
        name="every_layer",
    )
    zoo.compile(optimizers.SGD(schedule, momentum=0.9, nesterov=True), "binary_crossentropy", metrics=["accuracy"])
    zoo.fit(
        rng.random((4, 8, 8, 2), dtype=np.float32), rng.integers(0, 2, (4, 2)).astype(np.float32), epochs=1, verbose=0
    )

    gap = Sequential([L.Input((4, 4, 3)), L.Conv2D(2, 1), L.GlobalAveragePooling2D(), L.Softmax()], name="gap")
    gap.compile(optimizers.RMSprop(momentum=0.5), "categorical_crossentropy")
    gap.fit(rng.random((4, 4, 4, 3), dtype=np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]], epochs=1, verbose=0)

    # format version 2: a functional graph (residual add, concatenation, a layer used twice, a
    # frozen layer) and nested models (a Sequential in a Sequential, a functional model inside)
    inputs = L.Input((6, 6, 2))
    x = L.Conv2D(2, 3, padding="same", activation="relu", trainable=False)(inputs)
    x = L.Add()([x, inputs])
    shared = L.Conv2D(2, 1, name="shared_1x1")
    x = L.Concatenate()([shared(x), shared(inputs)])
    x = L.GlobalAveragePooling2D()(x)
    graph = cnnx.Model(inputs, L.Dense(2, activation="softmax")(x), name="graph")
    graph.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    graph.fit(rng.random((4, 6, 6, 2), dtype=np.float32), rng.integers(0, 2, 4), epochs=1, verbose=0)

    block_in = L.Input((6, 6, 1))
    block = cnnx.Model(block_in, L.Maximum()([L.Conv2D(1, 3, padding="same")(block_in), block_in]), name="block")
    augment = Sequential([L.RandomFlip("horizontal", seed=7)], name="augment")
    nested = Sequential(
        [L.Input((6, 6, 1)), augment, block, block, L.Flatten(), L.Dense(2, activation="softmax")], name="nested"
    )
    nested.compile("sgd", "sparse_categorical_crossentropy")
    nested.fit(rng.random((4, 6, 6, 1), dtype=np.float32), rng.integers(0, 2, 4), epochs=1, verbose=0)

    return {
        "graph_adam": (graph, "model"),
        "nested_sgd": (nested, "model"),
        "dense_only": (dense, "model"),
        "conv_pool_adam": (conv, "model"),
        "every_layer_sgd": (zoo, "model"),
        "gap_rmsprop": (gap, "model"),
        "conv_weights_only": (conv, "weights"),
    }


def dictionary() -> list[str]:
    """Header keys as they appear in the file, and configuration keys, class names and edge-case
    numbers as they appear inside the metadata strings (with escaped quotes)."""
    from cnnx import layers

    header = [
        '"__metadata__"',
        '"dtype"',
        '"F32"',
        '"shape"',
        '"data_offsets"',
        '"format"',
        '"cnnx"',
        '"format_version"',
        '"1"',
        '"2"',
        '"contents"',
        '"model"',
        '"weights"',
        '"model_config"',
        '"compile_config"',
        '"optimizer_iterations"',
        '"class_names"',
        '"sha256"',
        '"weights/',
        '"optimizer/',
        "[]",
        "{}",
        "null",
        "true",
        "false",
    ]
    names = [n for n in layers.__all__ if n not in ("Layer", "Input", "InputLayer")] + [
        "Adam",
        "AdamW",
        "SGD",
        "RMSprop",
        "Adagrad",
        "ExponentialDecay",
        "PiecewiseConstantDecay",
        "CosineDecay",
        "L1",
        "L2",
        "L1L2",
        "CategoricalCrossentropy",
        "SparseCategoricalCrossentropy",
        "BinaryCrossentropy",
        "MeanSquaredError",
        "MeanAbsoluteError",
    ]
    keys = [
        "class_name",
        "config",
        "name",
        "input_shape",
        "layers",
        "filters",
        "units",
        "kernel_size",
        "strides",
        "pool_size",
        "dilation_rate",
        "padding",
        "same",
        "valid",
        "height",
        "width",
        "target_shape",
        "noise_shape",
        "activation",
        "use_bias",
        "kernel_regularizer",
        "learning_rate",
        "momentum",
        "metrics",
        "accuracy",
        "optimizer",
        "loss",
        "axis",
        "seed",
        "factor",
        "value_range",
        "keepdims",
        "data_format",
        "trainable",
        "inbound_nodes",
        "input_layers",
        "output_layers",
        "keras_history",
        "__keras_tensor__",
        "args",
        "kwargs",
        "batch_shape",
        "module",
        "registered_name",
        "Functional",
        "Sequential",
    ]
    numbers = [
        "0",
        "-1",
        "16777216",
        "16777217",
        "2147483647",
        "2147483648",
        "4294967296",
        "9223372036854775807",
        "18446744073709551616",
        "1e308",
        "NaN",
        "Infinity",
        "-Infinity",
        "1.5",
    ]
    return header + ['\\"' + w + '\\"' for w in names + keys] + numbers


def write_dictionary(path: str) -> None:
    with open(path, "w") as f:
        f.write("# libFuzzer dictionary for fuzz/cpp/fuzz_model_file.cpp, written by make_corpus.py\n")
        for token in dictionary():
            f.write('"' + token.replace("\\", "\\\\").replace('"', '\\"') + '"\n')


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    write_dictionary(os.path.join(here, "cnnx.dict"))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    os.makedirs(out, exist_ok=True)
    for name, (model, kind) in models().items():
        path = os.path.join(out, f"{name}.cnnx")
        (model.save if kind == "model" else model.save_weights)(path)
        size = os.path.getsize(path)
        assert size < 50_000, f"{path} is {size} bytes; seeds must stay small"
        print(f"{path}: {size} bytes")


if __name__ == "__main__":
    main()
