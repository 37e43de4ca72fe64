"""Where the time goes: per-layer forward/backward wall time of the article's network training
step, measured inside the core (Sequential profiling).

    python benchmarks/profile_step.py [--batch-size 64] [--steps 50] [--threads N] [--optimizer adam]
"""

import argparse
import time

import numpy as np
from bench import cnnx_model  # the article's network, shared with the side-by-side benchmark

import cnnx


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--optimizer", default="adam")
    args = p.parse_args()
    if args.threads:
        cnnx.set_num_threads(args.threads)
    cnnx.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = args.batch_size * 8
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    model = cnnx_model(cnnx.optimizers.get(args.optimizer))
    core = model._core
    batches = [np.arange(i * args.batch_size, (i + 1) * args.batch_size, dtype=np.int64) for i in range(8)]
    for idx in batches:  # warm-up: workspaces sized, pages touched
        core.train_step(x, y, idx)
    core.set_profiling(True)
    start = time.perf_counter()
    for s in range(args.steps):
        core.train_step(x, y, batches[s % 8])
    wall = time.perf_counter() - start
    rows = core.profile()
    total = sum(f + b for _, f, b, _, _ in rows)
    print(
        f"batch {args.batch_size}, {cnnx.get_num_threads()} threads, kernels {cnnx._core.get_isa()}, "
        f"{args.steps} steps: {wall / args.steps * 1e3:.2f} ms/step, {args.batch_size * args.steps / wall:,.0f} images/s"
    )
    print(f"{'layer':<20} {'forward ms':>11} {'backward ms':>12} {'share':>7}")
    for name, f, b, _, _ in rows:
        print(f"{name:<20} {f / args.steps * 1e3:>11.3f} {b / args.steps * 1e3:>12.3f} {(f + b) / total:>7.1%}")
    print(f"{'(python + glue)':<20} {(wall - total) / args.steps * 1e3:>11.3f}")


if __name__ == "__main__":
    main()
