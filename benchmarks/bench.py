"""cnnx side by side with PyTorch (CPU) on the article's network.

    python benchmarks/bench.py [--threads 1 2] [--batch-sizes 64 128] [--vs torch|none]
                               [--repeats 3] [--quick] [--rss] [--markdown]

For each thread count it measures the kernels' peak (GFLOP/s), each conv layer of the article's
network at batch 64 (forward, forward+backward), max-pool and dense forward+backward, a full
training step (Adam, SGD with momentum) per batch size, inference at batch 256 and single-image
latency; with --rss, the peak RSS of one MNIST epoch per framework in a fresh process
(benchmarks/rss_epoch.py). cnnx and torch are measured alternately (cnnx, torch, cnnx, torch, ...)
for --repeats rounds after a warm-up; the table shows medians. The ratio column is always "higher
is better for cnnx": cnnx/torch for rates, torch/cnnx for times (rows marked "ratio=torch/cnnx").

PyTorch runs the same network in channels_last (its fastest layout here), float32, with
CrossEntropyLoss on logits; cnnx runs Dense(10, softmax) + categorical_crossentropy (fused in the core).
Both gather each training batch from the full array with an int64 index array, as fit() does.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

import numpy as np  # noqa: E402

import cnnx  # noqa: E402
from cnnx import Sequential  # noqa: E402
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D  # noqa: E402
from cnnx.optimizers import SGD, Adam  # noqa: E402

# (name, per-sample input shape, filters) of the three conv layers, all 3x3 "same".
CONVS = [("conv1", (28, 28, 1), 32), ("conv2", (14, 14, 32), 64), ("conv3", (7, 7, 64), 128)]
LAYER_BATCH = 64


def padding_share(h: int, w: int, k: int = 3) -> float:
    """Share of a 'same' stride-1 k x k convolution's taps that read the zero padding.

    The GFLOP/s below count every tap (2 * N * H * W * Cout * k * k * Cin, for both
    frameworks); these taps are in that count although they only multiply zeros. cnnx's
    implicit AVX-512 kernels (layers with kw * cin >= 16) skip the kernel rows that fall on
    them, and the columns: in the forward and input-gradient passes for tiles of whole 14- or
    7-pixel rows, in the weight gradient for its 14-row slices that lie inside one kernel
    column. For the article's conv2 and conv3 that is about 96% of these taps over a forward +
    backward step. conv1 (im2col) skips none.
    """

    def valid(n: int) -> int:  # (output position, kernel offset) pairs inside the image, one axis
        pad = (k - 1) // 2
        return sum(1 for o in range(n) for d in range(k) if 0 <= o - pad + d < n)

    return 1.0 - valid(h) * valid(w) / (h * w * k * k)


class Budget:
    """How long each single measurement runs (seconds), full or --quick."""

    def __init__(self, quick: bool):
        self.layer = 0.05 if quick else 0.25  # one time_step / torch loop
        self.train = 0.3 if quick else 1.5  # training / inference throughput
        self.latency_calls = 30 if quick else 300
        self.peak = 0.2 if quick else 0.5


# -- the networks -----------------------------------------------------------------------------
def cnnx_model(optimizer=None) -> Sequential:
    model = Sequential(
        [
            Input((28, 28, 1)),
            Conv2D(32, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(64, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(128, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Flatten(),
            Dense(100, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=optimizer or Adam(), loss="categorical_crossentropy")
    model.build()
    return model


def torch_model(torch):
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1152, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    )
    return model.to(memory_format=torch.channels_last)


def torch_optimizer(torch, name: str, params):
    if name == "adam":  # Keras' defaults (epsilon 1e-7)
        return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def to_torch(torch, x: np.ndarray):
    """NHWC numpy -> NCHW tensor in channels_last memory (a view of the same bytes)."""
    return torch.from_numpy(x).permute(0, 3, 1, 2)


# -- measurement helpers ----------------------------------------------------------------------
def loop_time(fn, seconds: float) -> float:
    """Seconds per call of fn(), calling it until `seconds` have passed (at least 3 calls)."""
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if n >= 3 and elapsed >= seconds:
            return elapsed / n


def alternate(measure_cnnx, measure_torch, repeats: int) -> tuple[float, float | None]:
    """Warm both up, then run cnnx, torch, cnnx, torch, ... `repeats` times; return the medians."""
    measure_cnnx()
    if measure_torch:
        measure_torch()
    c, t = [], []
    for _ in range(repeats):
        c.append(measure_cnnx())
        if measure_torch:
            t.append(measure_torch())
    return statistics.median(c), (statistics.median(t) if t else None)


def cnnx_layer_timer(layer, x: np.ndarray, backward: bool, need_dx: bool, seconds: float):
    """time_step(x, n, ...) measured inside the core, with n calibrated to take about `seconds`."""
    core = layer._core
    per_call = core.time_step(x, 2, backward, need_dx)
    n = max(3, int(seconds / max(per_call, 1e-6)))
    return lambda: core.time_step(x, n, backward, need_dx)


def torch_layer_timer(torch, module, x, backward: bool, seconds: float):
    """Seconds per forward (no_grad) or forward+backward (fresh gradients, as after zero_grad)."""
    if not backward:

        def step():
            with torch.no_grad():
                module(x)
    else:
        with torch.no_grad():
            grad = torch.rand_like(module(x))  # keeps the output's (channels_last) layout

        def step():
            module.zero_grad(set_to_none=True)
            x.grad = None
            module(x).backward(grad)

    return lambda: loop_time(step, seconds)


# -- the table --------------------------------------------------------------------------------
class Table:
    COLS = ("what", "threads", "cnnx", "torch", "ratio", "unit")

    def __init__(self):
        self.rows: list[tuple[str, ...]] = []

    def add(
        self,
        what: str,
        threads,
        c: float | None,
        t: float | None,
        unit: str,
        inverse: bool = False,
        note: str = "",
        digits: int = 1,
    ) -> None:
        """inverse: c and t are times, so the ratio is t/c (still higher is better for cnnx)."""
        ratio = "-"
        if c and t:
            ratio = f"{(t / c if inverse else c / t):.2f}"
        fmt = lambda v: "-" if v is None else f"{v:,.{digits}f}"  # noqa: E731
        self.rows.append(
            (what + (" [ratio=torch/cnnx]" if inverse else ""), str(threads), fmt(c) + note, fmt(t), ratio, unit)
        )
        print(f"  {' | '.join(self.rows[-1])}", file=sys.stderr, flush=True)

    def render(self, markdown: bool) -> str:
        widths = [max(len(r[i]) for r in [self.COLS, *self.rows]) for i in range(len(self.COLS))]
        left = (True, False, False, False, False, True)

        def line(cells):
            parts = [c.ljust(w) if is_left else c.rjust(w) for c, w, is_left in zip(cells, widths, left)]
            return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts).rstrip()

        if markdown:
            rule = (
                "|"
                + "|".join("-" * (w + 2) if is_left else "-" * (w + 1) + ":" for w, is_left in zip(widths, left))
                + "|"
            )
        else:
            rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(self.COLS), rule, *(line(r) for r in self.rows)])


# -- the benchmarks ---------------------------------------------------------------------------
def bench_layers(table: Table, torch, threads: int, peak: float, budget: Budget, repeats: int) -> None:
    rng = np.random.default_rng(0)
    for name, shape, cout in CONVS:
        h, w, cin = shape
        x = rng.random((LAYER_BATCH, *shape), dtype=np.float32)
        layer = Conv2D(cout, 3, padding="same", activation="relu")
        layer.build(shape)
        flops = 2.0 * LAYER_BATCH * h * w * cout * 9 * cin
        first = name == "conv1"  # the first layer needs no input gradient, in either framework
        tmod = tx = None
        if torch:
            nn = torch.nn
            tmod = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()).to(memory_format=torch.channels_last)
            tx = to_torch(torch, x.copy()).requires_grad_(not first)
        for backward in (False, True):
            total = flops * (1 if not backward else 2 if first else 3)
            c, t = alternate(
                cnnx_layer_timer(layer, x, backward, not first, budget.layer),
                torch_layer_timer(torch, tmod, tx, backward, budget.layer) if torch else None,
                repeats,
            )
            what = f"{name} {h}x{w}x{cin}->{cout} {'fwd+bwd' if backward else 'fwd'}" + (
                " (no dX)" if first and backward else ""
            )
            table.add(
                what,
                threads,
                total / c / 1e9,
                t and total / t / 1e9,
                "GFLOP/s (cnnx % of peak)",
                note=f" ({total / c / 1e9 / peak:.0%})",
            )

    x = rng.random((LAYER_BATCH, 28, 28, 32), dtype=np.float32)
    pool = MaxPooling2D(2)
    pool.build((28, 28, 32))
    tp = None
    if torch:
        tx = to_torch(torch, x.copy()).requires_grad_()
        tp = torch_layer_timer(torch, torch.nn.MaxPool2d(2), tx, True, budget.layer)
    c, t = alternate(cnnx_layer_timer(pool, x, True, True, budget.layer), tp, repeats)
    table.add("maxpool 2x2 on (64,28,28,32) fwd+bwd", threads, c * 1e3, t and t * 1e3, "ms", inverse=True, digits=3)

    x = rng.random((LAYER_BATCH, 1152), dtype=np.float32)
    dense = Dense(100, activation="relu")
    dense.build((1152,))
    td = None
    if torch:
        tmod = torch.nn.Sequential(torch.nn.Linear(1152, 100), torch.nn.ReLU())
        td = torch_layer_timer(torch, tmod, torch.from_numpy(x.copy()).requires_grad_(), True, budget.layer)
    c, t = alternate(cnnx_layer_timer(dense, x, True, True, budget.layer), td, repeats)
    table.add("dense 1152->100 relu, batch 64, fwd+bwd", threads, c * 1e3, t and t * 1e3, "ms", inverse=True, digits=3)


def bench_training(table: Table, torch, threads: int, batch: int, opt: str, budget: Budget, repeats: int) -> None:
    """Images/s of full training steps over 8 distinct random batches, cycled."""
    rng = np.random.default_rng(1)
    n = batch * 8
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, n)
    y = np.eye(10, dtype=np.float32)[labels]
    batches = np.split(rng.permutation(n).astype(np.int64), 8)

    model = cnnx_model(Adam() if opt == "adam" else SGD(0.01, momentum=0.9))
    core = model._core

    def run_cnnx():
        steps, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < budget.train or steps < 8:
            core.train_step(x, y, batches[steps % 8])
            steps += 1
        return batch * steps / elapsed

    run_torch = None
    if torch:
        tmodel = torch_model(torch)
        toptim = torch_optimizer(torch, opt, tmodel.parameters())
        loss_fn = torch.nn.CrossEntropyLoss()
        tx, ty = to_torch(torch, x), torch.from_numpy(labels)
        tbatches = [torch.from_numpy(b) for b in batches]

        def run_torch():
            steps, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < budget.train or steps < 8:
                idx = tbatches[steps % 8]
                toptim.zero_grad()
                loss = loss_fn(tmodel(tx[idx].contiguous(memory_format=torch.channels_last)), ty[idx])
                loss.backward()
                toptim.step()
                steps += 1
            return batch * steps / elapsed

    c, t = alternate(run_cnnx, run_torch, repeats)
    name = "Adam" if opt == "adam" else "SGD(0.01, momentum=0.9)"
    table.add(f"train step, batch {batch}, {name}", threads, c, t, "images/s", digits=0)


def bench_inference(table: Table, torch, threads: int, budget: Budget, repeats: int) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((256 * 8, 28, 28, 1), dtype=np.float32)
    x1 = x[:1].copy()
    core = cnnx_model()._core
    tmodel = tx = None
    if torch:
        tmodel = torch_model(torch).eval()
        tx = to_torch(torch, x)

    def rate(fn):
        return lambda: len(x) / loop_time(fn, budget.train)

    def run_torch_all():
        with torch.inference_mode():
            for start in range(0, len(x), 256):
                tmodel(tx[start : start + 256])

    c, t = alternate(rate(lambda: core.predict(x, 256)), rate(run_torch_all) if torch else None, repeats)
    table.add("inference, batch 256", threads, c, t, "images/s", digits=0)

    def latency(fn):
        def run():
            times = []
            for _ in range(budget.latency_calls):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            return statistics.median(times)

        return run

    def torch_one():
        with torch.inference_mode():
            tmodel(tx[:1])

    c, t = alternate(latency(lambda: core.predict(x1, 1)), latency(torch_one) if torch else None, repeats)
    table.add("single-image latency (batch 1)", threads, c * 1e3, t and t * 1e3, "ms", inverse=True, digits=3)


def bench_rss(table: Table, use_torch: bool, threads: int) -> None:
    """One MNIST epoch per framework, each in a fresh process (benchmarks/rss_epoch.py)."""
    results = {}
    for fw in ("cnnx", "torch") if use_torch else ("cnnx",):
        print(f"[rss] one MNIST epoch with {fw}, {threads} threads ...", file=sys.stderr, flush=True)
        out = subprocess.run(
            [sys.executable, str(HERE / "rss_epoch.py"), fw, "--threads", str(threads)], capture_output=True, text=True
        )
        if out.returncode != 0:
            sys.exit(f"rss_epoch.py {fw} failed:\n{out.stderr}")
        results[fw] = json.loads(out.stdout.strip().splitlines()[-1])
    c, t = results["cnnx"], results.get("torch")
    table.add(
        "peak RSS after MNIST load (shared numpy baseline)",
        threads,
        c["data_rss_mb"],
        t and t["data_rss_mb"],
        "MB",
        inverse=True,
        digits=0,
    )
    table.add(
        "peak RSS, 1 MNIST epoch (batch 64, Adam)",
        threads,
        c["max_rss_mb"],
        t and t["max_rss_mb"],
        "MB",
        inverse=True,
        digits=0,
    )
    table.add("MNIST epoch time (batch 64, Adam)", threads, c["epoch_s"], t and t["epoch_s"], "s", inverse=True)


# -- main -------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_header(peers: str = "") -> list[str]:
    """The lines every benchmark prints first: the machine, the date (UTC), the versions and the
    command. ``peers``: the compared libraries' versions, appended to the versions line."""
    return [
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        f"date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"cnnx {cnnx.__version__} (kernels: {cnnx._core.get_isa()}), {peers + ', ' if peers else ''}"
        f"numpy {np.__version__}, python {platform.python_version()}",
        f"command: python {shlex.join(sys.argv)}",
    ]


def load_torch(vs: str):
    if vs == "none":
        return None
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: measuring cnnx only (pip install torch to compare).", file=sys.stderr)
        return None
    return torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--vs", choices=("torch", "none"), default="torch")
    p.add_argument("--repeats", type=int, default=None, help="alternating rounds per measurement (3; --quick: 1)")
    p.add_argument("--quick", action="store_true", help="short timings for a smoke test")
    p.add_argument("--rss", action="store_true", help="also one MNIST epoch per framework (peak RSS)")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = p.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    budget = Budget(args.quick)
    torch = load_torch(args.vs)

    header = run_header(f"torch {torch.__version__} (channels_last, float32)" if torch else "torch: not compared") + [
        f"medians of {repeats} alternating round(s) after warm-up; ratio > 1 means cnnx is faster/leaner",
        "conv GFLOP/s count every tap, as usual; of those, "
        + ", ".join(f"{name} {padding_share(*shape[:2]):.1%}" for name, shape, _ in CONVS)
        + " multiply the zero padding (cnnx's implicit AVX-512 path, conv2 and conv3 here, skips most; see padding_share)",
    ]
    print("\n".join(header), file=sys.stderr, flush=True)

    cnnx.utils.set_random_seed(0)
    if torch:
        torch.manual_seed(0)
    table, warnings, peaks = Table(), [], {}
    for threads in args.threads:
        cnnx.set_num_threads(threads)
        if torch:
            torch.set_num_threads(threads)
        peak = peaks[threads] = cnnx._core.peak_gflops(threads, budget.peak)
        table.add("peak probe, cnnx._core.peak_gflops", threads, peak, None, "GFLOP/s")
        bench_layers(table, torch, threads, peak, budget, repeats)
        for batch in args.batch_sizes:
            for opt in ("adam", "sgd"):
                bench_training(table, torch, threads, batch, opt, budget, repeats)
        bench_inference(table, torch, threads, budget, repeats)
        # The machine is shared: a peak that moved during the run, or that does not scale with
        # the threads, means another process took cores and these rows are not trustworthy.
        after = cnnx._core.peak_gflops(threads, budget.peak)
        if abs(after - peak) > 0.2 * peak:
            warnings.append(f"{threads} threads: the peak moved from {peak:.0f} to {after:.0f} GFLOP/s during the run")
        if 1 in peaks and threads > 1 and peak < 0.8 * threads * peaks[1]:
            warnings.append(
                f"{threads} threads: the peak is only {peak / peaks[1]:.1f}x the 1-thread peak "
                "(busy machine or fewer free cores)"
            )
    if args.rss:
        bench_rss(table, torch is not None, max(args.threads))

    print()
    if args.markdown:
        print("\n".join(f"- {h}" for h in header) + "\n")
    else:
        print("\n".join(header) + "\n")
    print(table.render(args.markdown))
    for w in warnings:
        print(f"\nWARNING: {w}; rerun on an idle machine.")


if __name__ == "__main__":
    main()
