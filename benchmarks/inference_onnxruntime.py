"""Inference of the article's network: cnnx beside onnxruntime running the same model exported by
cnnx (`model.export(..., format="onnx")`), interleaved in one run, same thread count.

    pip install ".[onnx]" onnxruntime
    python benchmarks/inference_onnxruntime.py [--threads 2] [--rounds 7]

Each round times cnnx, then onnxruntime, on the same input; the table reports medians of the
rounds. Read the ratio column (this machine is shared and noisy). `predict_on_batch` is cnnx's
single-batch call without predict()'s batching loop, the fair match for one onnxruntime run."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import onnxruntime as ort
from bench import cnnx_model, cpu_model  # the article's network as bench.py measures it

import cnnx


def timed(fn, reps: int) -> float:
    # onnxruntime's pool threads spin for a while after a run (its default): without a pause they
    # would take the cores from whatever is timed next.
    time.sleep(0.2)
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cnnx.set_num_threads(args.threads)
    cnnx.utils.set_random_seed(0)
    model = cnnx_model()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "article.onnx")
        model.export(path, format="onnx", verbose=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    print(f"CPU: {cpu_model()}, threads: {args.threads}, cnnx kernels: {cnnx._core.get_isa()}")
    print(f"cnnx {cnnx.__version__}, onnxruntime {ort.__version__}; medians of {args.rounds} interleaved rounds\n")
    print(
        f"{'batch':>5}  {'cnnx predict_on_batch ms':>24}  {'cnnx predict ms':>15}  {'onnxruntime ms':>14}  {'ORT / cnnx':>10}"
    )
    rng = np.random.default_rng(0)
    for batch in (1, 8, 64, 256):
        x = rng.random((batch, 28, 28, 1), dtype=np.float32)
        out = session.run(None, {name: x})[0]
        np.testing.assert_allclose(out, model.predict_on_batch(x), atol=1e-5)  # the same model
        reps = max(3, 2000 // batch)
        on_batch, predict, onnx = [], [], []
        for _ in range(args.rounds):
            on_batch.append(timed(lambda x=x: model.predict_on_batch(x), reps))
            predict.append(timed(lambda x=x, b=batch: model.predict(x, batch_size=b, verbose=0), reps))
            onnx.append(timed(lambda x=x: session.run(None, {name: x}), reps))
        a, p, o = (statistics.median(v) for v in (on_batch, predict, onnx))
        print(f"{batch:>5}  {a:>24.3f}  {p:>15.3f}  {o:>14.3f}  {o / a:>10.2f}")


if __name__ == "__main__":
    main()
