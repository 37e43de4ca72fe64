"""Data-parallel training over MPI on this machine, and the numbers a scaling model needs.

    python benchmarks/distributed.py [--rounds 3] [--steps 40] [--batch 128] [--micro-batches 4]
                                     [--markdown]        # about 30 s; needs mpi4py and mpirun

The article's network (bench.py's cnnx_model), MNIST-shaped random data (a step's time does not
depend on the values), Adam. The script launches `mpirun` itself (--allow-run-as-root only as
root, --oversubscribe when there are more processes than cores, --bind-to none so that Open MPI
does not pin a 2-thread process to one core) on a worker mode of this file, and measures:

a) the price of bit-identical weights: plain fit (2 threads) against
   fit(distribute=DataParallel(micro_batches=4)) on one process (2 threads), same global batch;
b) np=2 with 1 thread each against np=1 with 2 threads, same global batch (time per step);
c) the communication overlap at np=2, from the core's timeline of each step
   (model._dp_run.step.timeline(), read in on_train_batch_end): bucket k is on the wire during
   [taken_k, reduced_k]; the hidden share is the part of the union of those intervals that lies
   inside the last micro-batch's backward [backward_begin, backward_end], over the union's length;
   also up to the last bucket's announcement instead of backward_end (see overlap(): with more
   threads than cores the stamp of backward_end waits for the communicator threads). For
   bucket_bytes 64 KiB, 256 KiB (the default) and 4 MiB;
d) the bytes each process sends per step (recursive halving + doubling: 2 (P-1)/P of the
   buffer) for the article's network and the ResNet example (examples/resnet_cifar10.py,
   ResNet-8 and ResNet-20), and the one-process step times the scaling model starts from: plain
   and DataParallel steps (in turns, in this process), and plain steps of the article's network
   at batch 128 down to 2 (a machine's share of a fixed global batch).

The scaling model: each bucket an allreduce of 2 (P-1)/P * bytes / bandwidth + 2 log2(P) * alpha
(10, 25, 100 Gbit/s; alpha = ALPHA_US), the buckets one after another; efficiency without
overlap, with the hidden share measured in c), and pipelined: each bucket sent from its
announcement time in the one-process step's timeline, what is left after the backward exposed.
Weak scaling (per-process batch fixed) and strong scaling (global batch fixed) for 2-64 machines.

The launches run in turns, round after round (np=1, np=2, np=1, ...; inside a launch the variants
take turns too, each round led by the next one), and the tables show medians over all steps of
all rounds, so a noisy, shared machine affects the variants alike. The scaling model at the end
is arithmetic on these measurements: the network's bandwidth and latency are assumed, not measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench import cnnx_model, run_header

import cnnx
from cnnx.distribute import DataParallel

HERE = Path(__file__).resolve().parent
KIB = 1024
BUCKETS = {"64K": 64 * KIB, "256K": 256 * KIB, "4M": 4 * KIB * KIB}
MACHINES = (2, 4, 8, 16, 32, 64)
LINKS_GBIT = (10, 25, 100)
ALPHA_US = 10.0  # one message's latency over TCP between machines: 5-20 us; 10 assumed


# -- the worker (one MPI process) ---------------------------------------------------------------
class StepClock(cnnx.callbacks.Callback):
    """Seconds between consecutive batch ends, and the core's timeline of each distributed step."""

    def __init__(self):
        super().__init__()
        self.ends: list[float] = []
        self.timelines: list[dict] = []
        self.buckets: list[tuple[int, int]] = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())
        run = getattr(self.model, "_dp_run", None)
        if run is not None:
            self.timelines.append(run.step.timeline())
            if not self.buckets:
                self.buckets = [(int(b), int(e)) for b, e in run.step.buckets()]


def worker(args) -> None:
    cnnx.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = (args.warmup + args.steps + 1) * args.batch
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    cnnx.utils.set_random_seed(0)
    model = cnnx_model(cnnx.optimizers.Adam())
    start_weights = model.get_weights()
    comm = None
    variants = args.variants.split(",")
    if any(v != "plain" for v in variants):
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rank = comm.Get_rank() if comm is not None else 0
    k = args.lead % len(variants)
    results = {}
    for variant in variants[k:] + variants[:k]:
        model.set_weights(start_weights)
        clock = StepClock()
        dist = None
        if variant != "plain":
            bucket = BUCKETS[variant.split(":")[1]]
            dist = DataParallel(comm, micro_batches=args.micro_batches, bucket_bytes=bucket, seed=0)
        if comm is not None:
            comm.Barrier()
        model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0, callbacks=[clock], distribute=dist)
        times = np.diff(clock.ends)[args.warmup :].tolist()
        results[variant] = {
            "step_s": times,
            "timelines": clock.timelines[args.warmup + 1 :],
            "buckets": clock.buckets,
        }
    if rank == 0:
        print("RESULT " + json.dumps(results), flush=True)


# -- the launcher --------------------------------------------------------------------------------
def mpirun(processes: int) -> list[str]:
    exe = shutil.which("mpirun", path=str(Path(sys.executable).parent)) or shutil.which("mpirun")
    if exe is None:
        sys.exit('distributed.py: mpirun not found: pip install "cnnx[mpi]" (mpi4py and Open MPI from PyPI)')
    cmd = [exe, "--bind-to", "none", "-np", str(processes)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    if processes > (os.cpu_count() or 1):
        cmd.insert(1, "--oversubscribe")
    return cmd


def launch(processes: int, threads: int, variants: list[str], args, lead: int) -> dict:
    cmd = mpirun(processes) + [sys.executable, str(Path(__file__).resolve()), "--worker"]
    cmd += ["--threads", str(threads), "--variants", ",".join(variants), "--lead", str(lead)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch)]
    cmd += ["--micro-batches", str(args.micro_batches)]
    print(f"[np={processes}, {threads} thread(s)] {', '.join(variants)} ...", file=sys.stderr, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        sys.exit(f"distributed.py: {shlex.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[-1][len("RESULT ") :])


# -- timeline arithmetic -------------------------------------------------------------------------
def union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[list[float]] = []
    for b, e in sorted(intervals):
        if merged and b <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([b, e])
    return [(b, e) for b, e in merged]


def overlap(tl: dict) -> tuple[float, float, float]:
    """(communication time: the union's length, the share of it inside the last backward
    [backward_begin, backward_end], the share inside [backward_begin, the last announcement]).

    The second end is the honest one on a machine with fewer cores than threads: once the last
    bucket is announced the backward has nothing left to do, but its end is stamped only when
    the compute thread runs again, after a communicator thread that took its core."""
    wire = union(list(zip(tl["taken"], tl["reduced"])))
    total = sum(e - b for b, e in wire)

    def inside(lo: float, hi: float) -> float:
        part = sum(max(0.0, min(e, hi) - max(b, lo)) for b, e in wire)
        return part / total if total > 0 else float("nan")

    lo = tl["backward_begin"]
    return total, inside(lo, tl["backward_end"]), inside(lo, min(tl["backward_end"], max(tl["ready"])))


# -- what the parent measures itself: parameter counts and one-process step times ---------------
def resnet_model(blocks: int):
    sys.path.insert(0, str(HERE.parent / "examples"))
    from resnet_cifar10 import build_resnet

    model = build_resnet(blocks)
    model.compile(optimizer=cnnx.optimizers.Adam(), loss="categorical_crossentropy")
    return model


def dp_profile(model, plain, shape: tuple, batch: int, micro_batches: int, steps: int) -> dict:
    """One process's DataParallel steps (no MPI: the core's step alone) in turns with plain steps
    of a second model: the buffer's floats, the trainable params, the bucket sizes at the default
    bucket_bytes, both median step times and the timeline of the median DataParallel step."""
    step = cnnx._core.DataParallelStep(model._core, micro_batches, 0, 1, BUCKETS["256K"] // 4, 0)
    rng = np.random.default_rng(2)
    x = rng.random((batch, *shape), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    index = np.arange(batch, dtype=np.int64)
    step.train_step(x, y, index, None, batch, 60.0)
    plain._core.train_step(x, y, index)
    runs, plain_s = [], []
    for _ in range(steps):
        t = time.perf_counter()
        step.train_step(x, y, index, None, batch, 60.0)
        runs.append((time.perf_counter() - t, step.timeline()))
        t = time.perf_counter()
        plain._core.train_step(x, y, index)
        plain_s.append(time.perf_counter() - t)
    runs.sort(key=lambda r: r[0])
    return {
        "floats": len(step.buffer()),
        "params": int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
        "bucket_bytes": [(e - b) * 4 for b, e in step.buckets()],
        "step_s": runs[len(runs) // 2][0],
        "timeline": runs[len(runs) // 2][1],
        "plain_s": statistics.median(plain_s),
    }


def step_times(models: dict, shape: tuple, rounds: int, steps: int) -> dict:
    """Median seconds of a plain training step (the core's train_step, as fit runs it) per
    {batch: model}, the batch sizes measured in turns, round after round."""
    rng = np.random.default_rng(1)
    data = {}
    for batch, model in models.items():
        n = batch * 8
        x = rng.random((n, *shape), dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
        data[batch] = (x, y, np.split(rng.permutation(n).astype(np.int64), 8))
        model._core.train_step(x, y, data[batch][2][0])
    times: dict = {b: [] for b in models}
    for _ in range(rounds):
        for batch, model in models.items():
            x, y, batches = data[batch]
            for i in range(steps):
                t = time.perf_counter()
                model._core.train_step(x, y, batches[i % 8])
                times[batch].append(time.perf_counter() - t)
    return {b: statistics.median(v) for b, v in times.items()}


# -- tables --------------------------------------------------------------------------------------
def table(head: list[str], rows: list[list[str]], markdown: bool) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    if markdown:
        line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
        return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, rows)])


def side_by_side(blocks: list[str], gap: int = 4) -> str:
    """Plain-text tables next to each other (markdown ones one after the other)."""
    split = [b.splitlines() for b in blocks]
    width = [max(map(len, s)) for s in split]
    height = max(map(len, split))
    return "\n".join(
        (" " * gap).join((s[i] if i < len(s) else "").ljust(w) for s, w in zip(split, width)).rstrip()
        for i in range(height)
    )


def ms(v: float) -> str:
    return f"{v * 1e3:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="np=1 / np=2 launches in turns")
    p.add_argument("--steps", type=int, default=40, help="timed steps per variant per launch")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch", type=int, default=128, help="the global batch")
    p.add_argument("--micro-batches", type=int, default=4)
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--variants", default="", help=argparse.SUPPRESS)
    p.add_argument("--lead", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    header = run_header() + [
        f"the article's network, Adam, global batch {args.batch}, random MNIST-shaped data; "
        f"DataParallel(micro_batches={args.micro_batches}); medians over {args.rounds} rounds x {args.steps} steps",
    ]
    print("\n".join(header), file=sys.stderr, flush=True)
    load_start = os.getloadavg()[0]
    one = ["plain", "dp:256K"]
    two = ["dp:256K", "dp:64K", "dp:4M"]
    got: dict[str, dict] = {}
    for r in range(args.rounds):
        launches = [(1, 2, one), (2, 1, two)]
        for processes, threads, variants in launches[r % 2 :] + launches[: r % 2]:
            res = launch(processes, threads, variants, args, r)
            for v, d in res.items():
                key = f"np{processes} {v}"
                acc = got.setdefault(key, {"step_s": [], "timelines": [], "buckets": []})
                acc["step_s"] += d["step_s"]
                acc["timelines"] += d["timelines"]
                acc["buckets"] = d["buckets"] or acc["buckets"]

    # The parent alone now: the buffers, the one-process DataParallel steps and plain steps.
    cnnx.set_num_threads(min(2, os.cpu_count() or 1))
    article = cnnx_model(cnnx.optimizers.Adam())
    art = dp_profile(article, cnnx_model(), (28, 28, 1), args.batch, args.micro_batches, 5 * args.rounds)
    sizes = tuple(args.batch >> k for k in range(7) if args.batch >> k >= 1)  # the batch down to batch / 64
    sweep = step_times({b: cnnx_model(cnnx.optimizers.Adam()) for b in sizes}, (28, 28, 1), args.rounds, 8)
    resnets = {}
    for blocks in (1, 3):  # ResNet-8 and ResNet-20
        resnets[blocks] = dp_profile(
            resnet_model(blocks), resnet_model(blocks), (32, 32, 3), args.batch, args.micro_batches, 2 * args.rounds
        )

    med = {k: statistics.median(v["step_s"]) for k, v in got.items()}
    # The machine is shared: say how busy it was (1-minute load average, at the start and the end).
    header.append(
        f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, {os.cpu_count()} CPUs"
    )
    out = ["\n".join(("- " + h) if args.markdown else h for h in header)]

    plain, dp1, dp2 = med["np1 plain"], med["np1 dp:256K"], med["np2 dp:256K"]
    t1 = table(
        ["a) one process, 2 threads", "ms/step", "vs plain"],
        [
            ["fit, plain", ms(plain), "1.00x"],
            [f"fit, DataParallel({args.micro_batches} micro-batches)", ms(dp1), f"{dp1 / plain:.2f}x"],
        ],
        args.markdown,
    )
    t2 = table(
        ["b) same global batch", "ms/step", "vs np=1"],
        [
            ["np=1 x 2 threads, DataParallel", ms(dp1), "1.00x"],
            ["np=2 x 1 thread, DataParallel", ms(dp2), f"{dp1 / dp2:.2f}x speed"],
            ["np=1 x 2 threads, plain fit", ms(plain), f"{dp1 / plain:.2f}x speed"],
        ],
        args.markdown,
    )
    rows, shares = [], {}
    for name in ("64K", "256K", "4M"):
        d = got[f"np2 dp:{name}"]
        sizes = [(e - b) * 4 for b, e in d["buckets"]]
        comm = [overlap(t) for t in d["timelines"]]
        share = statistics.median(c[2] for c in comm)
        shares[name] = share
        bwd = statistics.median(t["backward_end"] - t["backward_begin"] for t in d["timelines"])
        tail = statistics.median(t["step_end"] - t["backward_end"] for t in d["timelines"])
        lag = statistics.median(x for t in d["timelines"] for x in np.subtract(t["taken"], t["ready"]))
        rows.append(
            [
                f"{name} ({len(sizes)} buckets, {min(sizes) / KIB:.0f}-{max(sizes) / KIB:.0f} KiB)",
                ms(med[f"np2 dp:{name}"]),
                ms(lag),
                ms(statistics.median(c[0] for c in comm)),
                ms(bwd),
                ms(tail),
                f"{statistics.median(c[1] for c in comm):.0%}",
                f"{share:.0%}",
            ]
        )
    t3 = table(
        [
            "c) np=2, bucket_bytes",
            "ms/step",
            "ready->taken ms",
            "comm ms",
            "last bwd ms",
            "bwd end->step end ms",
            "hidden to bwd end",
            "to last bucket",
        ],
        rows,
        args.markdown,
    )
    out.append("\n\n".join([t1, t2, t3]) if args.markdown else side_by_side([t1, t2]) + "\n\n" + t3)

    # One step's timeline at np=2, the default buckets: a step of median length.
    d = got["np2 dp:256K"]
    tl = sorted(d["timelines"], key=lambda t: t["step_end"])[len(d["timelines"]) // 2]
    trows = [
        [str(k), f"{(e - b) * 4 / KIB:.0f}", ms(tl["ready"][k]), ms(tl["taken"][k]), ms(tl["reduced"][k])]
        for k, (b, e) in enumerate(d["buckets"])
    ]
    out.append(
        f"one step at np=2, bucket_bytes=256 KiB: last backward {ms(tl['backward_begin'])}-{ms(tl['backward_end'])} ms, "
        f"step end {ms(tl['step_end'])} ms (ms since the step began)\n"
        + table(["bucket", "KiB", "ready ms", "taken ms", "reduced ms"], trows, args.markdown)
    )

    # d) bytes per step, and the model.
    nets = [("article's network", art)]
    nets += [(f"ResNet-{6 * b + 2} (resnet_cifar10.py --blocks {b})", v) for b, v in resnets.items()]
    brows = []
    for name, v in nets:
        floats = v["floats"]
        sent = [2 * (p - 1) / p * floats * 4 for p in MACHINES]
        brows.append(
            [name, f"{v['params']:,}", f"{floats:,}", f"{floats * 4 / 2**20:.2f}", str(len(v["bucket_bytes"]))]
            + [f"{s / 2**20:.2f}" for s in (sent[0], sent[-1])]
            + [ms(v["plain_s"]), ms(v["step_s"]), f"{v['step_s'] / v['plain_s']:.2f}x"]
        )
    out.append(
        table(
            [
                "d) network",
                "params",
                "buffer floats",
                "buffer MiB",
                "buckets @256K",
                "sent/step P=2 MiB",
                "P=64 MiB",
                f"1 proc plain ms/step @{args.batch}",
                f"DataParallel({args.micro_batches})",
                "vs plain",
            ],
            brows,
            args.markdown,
        )
    )
    top = max(sweep)
    srows = [
        [str(b), ms(t), f"{b / t:,.0f}", f"{top // b}", f"{top / b * t / sweep[top]:.2f}x"] for b, t in sweep.items()
    ]
    out.append(
        "plain steps of the article's network, one process, 2 threads, by batch (a machine's share in strong "
        f"scaling; S steps of batch {top}/S: what S micro-batches cost one process, without the leaf sums)\n"
        + table(["batch", "ms/step", "images/s", "S", f"S steps vs one of {top}"], srows, args.markdown)
    )

    # The model: allreduce time over each link, and the efficiency it predicts (see BENCHMARKS.md).
    h = shares["256K"]  # the hidden share measured at np=2 (shared memory: communication is fast here)

    def bucket_time(nbytes: float, p: int, gbit: float) -> float:
        """Recursive halving + doubling of one bucket: bandwidth term + latency term."""
        return 2 * (p - 1) / p * nbytes * 8 / (gbit * 1e9) + 2 * math.log2(p) * ALPHA_US * 1e-6

    def predict(v: dict, compute: float, p: int, gbit: float) -> tuple[float, float, float, float]:
        """(allreduce s, efficiency without overlap, with the measured hidden share, pipelined:
        the buckets one after the other from their measured announcement times, the timeline of
        the one-process step scaled to `compute`)."""
        times = [bucket_time(b, p, gbit) for b in v["bucket_bytes"]]
        t_ar = sum(times)
        tl = v["timeline"]
        scale = compute / tl["step_end"]
        end = 0.0
        for ready, t in zip(tl["ready"], times):
            end = max(end, ready * scale) + t
        exposed = max(0.0, end - tl["backward_end"] * scale)
        return t_ar, compute / (compute + t_ar), compute / (compute + (1 - h) * t_ar), compute / (compute + exposed)

    head = ["network, link"] + [f"P={p}" for p in MACHINES]
    wrows = []
    for name, v in nets:
        for gbit in LINKS_GBIT:
            cells = [f"{name.split(' (')[0]}, {gbit} Gbit/s"]
            for p in MACHINES:
                t_ar, e0, e1, e2 = predict(v, v["step_s"], p, gbit)
                cells.append(f"{ms(t_ar)} / {e0:.0%} / {e1:.0%} / {e2:.0%}")
            wrows.append(cells)
    out.append(
        f"weak scaling model (per-process batch {args.batch}, {args.micro_batches} micro-batches per process; "
        "compute = the one-process DataParallel step measured in d)): allreduce ms / efficiency without overlap / "
        f"with the measured hidden share {h:.0%} / pipelined on the measured announcement times; "
        f"alpha {ALPHA_US:g} us per message, each bucket its own allreduce\n" + table(head, wrows, args.markdown)
    )
    srows = []
    for gbit in LINKS_GBIT:
        cells = [f"article's network, {gbit} Gbit/s"]
        for p in MACHINES:
            s = max(args.micro_batches, p)  # bit-identical weights need micro_batches >= P
            compute = s // p * sweep.get(args.batch // s, float("nan"))
            _, e0, e1, e2 = predict(art, compute, p, gbit)
            cells.append(f"{ms(compute)} / " + " / ".join(f"{e * plain / (p * compute):.0%}" for e in (e0, e1, e2)))
        srows.append(cells)
    out.append(
        f"strong scaling model (global batch {args.batch} fixed, micro_batches = max({args.micro_batches}, P)): "
        "compute ms per machine (S/P plain steps of batch B/S, measured above) / efficiency against one plain "
        "process at the whole batch: without overlap / measured share / pipelined\n"
        + table(["link"] + [f"P={p}" for p in MACHINES], srows, args.markdown)
    )
    print()
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
