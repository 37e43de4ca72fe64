"""cnnx: train and run convolutional neural networks fast on the CPU, with Keras' API.

import cnnx
from cnnx.layers import Input, Conv2D, MaxPooling2D, Flatten, Dense
model = cnnx.Sequential([Input((28, 28, 1)), Conv2D(32, 3, activation="relu"), ...])

or, with the functional API, inputs = cnnx.Input((28, 28, 1)); x = Conv2D(32, 3)(inputs); ...;
model = cnnx.Model(inputs, outputs).
"""

from __future__ import annotations

from . import (
    _core,
    backend,
    callbacks,
    datasets,
    distribute,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    regularizers,
    saving,
    utils,
)
from ._graph import KerasTensor
from .layers import Input
from .models import Model, Sequential

__version__: str = _core.__version__  # written once, in CMakeLists.txt

__all__ = [
    "Input",
    "KerasTensor",
    "Model",
    "Sequential",
    "backend",
    "callbacks",
    "datasets",
    "distribute",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "regularizers",
    "saving",
    "utils",
    "set_num_threads",
    "get_num_threads",
    "__version__",
]


def set_num_threads(n: int) -> None:
    """Sets how many threads cnnx's kernels use (OpenMP; 1 without OpenMP): an int from 1 to
    1024 (``cnnx._core.MAX_THREADS``; see parallel.hpp for why there is a bound)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: expected an int >= 1, received {n!r}")
    if not -(2**63) <= n < 2**63:  # beyond the core's int64: refuse it with the core's message
        raise ValueError(
            f"set_num_threads: expected a number of threads between 1 and {_core.MAX_THREADS}, received {n}"
        )
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads cnnx's kernels use."""
    return int(_core.get_num_threads())
