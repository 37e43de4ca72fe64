"""Per-batch cost of a loss written in Python against the built-in one, and of metrics computed in
Python on the step's outputs, on the article's MNIST network (batch 128, random data: the time of a
step does not depend on the values).

    python benchmarks/python_loss.py [--steps 40] [--rounds 5]

Each variant trains the same network from the same weights; the variants run in turns, round after
round (each round led by the next variant), and the table reports each one's median step time, so
that a noisy, shared machine affects them alike. The second table times the loss and metric work
alone on one batch of outputs: the step's other work is the same for every variant. The Python-loss rows include the callback into Python (GIL taken back inside the step),
the NumPy loss and gradient, and the copies in and out."""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np
from bench import cnnx_model, cpu_model

import cnnx


class PythonCrossentropy(cnnx.losses.Loss):
    """Categorical cross-entropy in NumPy with its gradient (what a user would write)."""

    def call(self, y_true, y_pred):
        p = np.clip(y_pred / y_pred.sum(-1, keepdims=True), 1e-7, 1 - 1e-7)
        return -np.sum(y_true * np.log(p), axis=-1)

    def gradient(self, y_true, y_pred):
        return -y_true / y_pred + y_true.sum(-1, keepdims=True) / y_pred.sum(-1, keepdims=True)


def plain_crossentropy(y_true, y_pred):
    """The same as a plain function: cnnx differentiates it numerically (2 x 10 + 1 calls)."""
    p = np.clip(y_pred / y_pred.sum(-1, keepdims=True), 1e-7, 1 - 1e-7)
    return -np.sum(y_true * np.log(p), axis=-1)


def model(loss, metrics, weights):
    m = cnnx_model()  # the article's network as bench.py measures it
    m.compile(optimizer=cnnx.optimizers.Adam(), loss=loss, metrics=metrics)
    if weights is not None:
        m.set_weights(weights)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40, help="steps per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch, 28, 28, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, args.batch)]
    base = model("categorical_crossentropy", None, None).get_weights()
    variants = {
        "built-in categorical_crossentropy (fused with softmax)": model("categorical_crossentropy", None, base),
        "Python Loss subclass with gradient()": model(PythonCrossentropy(), None, base),
        "plain Python function (numeric gradient)": model(plain_crossentropy, None, base),
        "built-in + metrics=['accuracy'] (counted in the core)": model("categorical_crossentropy", ["accuracy"], base),
        "built-in + metrics=['mae', 'auc'] (Python, on the outputs)": model(
            "categorical_crossentropy", ["mae", "auc"], base
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(2):  # warm-up: workspaces, first-touch pages
        for m in variants.values():
            m.train_on_batch(x, y)
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # each variant leads a round in turn
            m = variants[name]
            t0 = time.perf_counter()
            for _ in range(args.steps):
                m.train_on_batch(x, y)
            times[name].append((time.perf_counter() - t0) / args.steps)

    print(f"CPU: {cpu_model()} ({platform.machine()}), threads: {cnnx.get_num_threads()}")
    print(
        f"cnnx {cnnx.__version__} (kernels: {cnnx._core.get_isa()}), Python {sys.version.split()[0]}, NumPy {np.__version__}"
    )
    print(f"article's MNIST network, batch {args.batch}, Adam; median of {args.rounds} rounds of {args.steps} steps")
    print()
    ref = statistics.median(times[next(iter(times))])
    width = max(len(n) for n in times)
    print(f"{'whole training step':<{width}}  {'ms/batch':>9}  {'vs built-in':>11}  {'extra ms':>8}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<{width}}  {med * 1e3:9.2f}  {med / ref:10.2f}x  {(med - ref) * 1e3:8.2f}")

    # The loss (and metric) work alone, on one batch of softmax outputs: far less noisy than the
    # difference of two whole steps above.
    p = variants[next(iter(variants))].predict(x, batch_size=args.batch, verbose=0)
    core = cnnx.losses.CategoricalCrossentropy()._core
    py_fn = cnnx.losses._core_function(PythonCrossentropy())
    plain_fn = cnnx.losses._core_function(cnnx.losses.LossFunctionWrapper(plain_crossentropy))
    mae, auc = cnnx.metrics.MeanAbsoluteError(), cnnx.metrics.AUC()
    parts = {
        "built-in loss + gradient (core, fused)": lambda: core.compute(p, y, True, None),
        "Python Loss subclass: call + gradient": lambda: py_fn(y, p, None, True),
        "plain function: call + numeric gradient": lambda: plain_fn(y, p, None, True),
        "metrics 'mae' + 'auc' update_state": lambda: (mae.update_state(y, p), auc.update_state(y, p)),
    }
    print()
    print(f"{'loss / metric work alone':<{width}}  {'ms/batch':>9}")
    for name, fn in parts.items():
        reps = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            for _ in range(50):
                fn()
            reps.append((time.perf_counter() - t0) / 50)
        print(f"{name:<{width}}  {statistics.median(reps) * 1e3:9.3f}")


if __name__ == "__main__":
    main()
