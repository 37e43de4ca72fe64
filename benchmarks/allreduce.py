"""The cross-process gradient sum of DataParallel on this machine: cnnx's two fixed-order
reductions against MPI's own Allreduce, on the article network's gradient buckets.

    python benchmarks/allreduce.py [--rounds 5] [--repeats 200] [--micro-batches 4 12] [--markdown]
                                   # about 30 s; needs mpi4py and mpirun

The buffer and its buckets are the core's (a DataParallelStep on the article's network, the
default 256 KiB buckets); each timed repeat sums every bucket once, one after another, as the
communicator thread does in a step. Variants, taking turns inside each launch:

- mpi: ``comm.Allreduce(IN_PLACE)`` per bucket, MPI's own algorithm (the peer: no fixed order,
  so no bit-identity across process counts);
- halving: ``BucketReducer`` on a layout where recursive halving and doubling applies
  (``tree_allreduce``; S and P powers of two);
- general: ``BucketReducer``'s chunk-per-process path, which any P takes (forced here for
  powers of two too, to compare the two on the same layout).

The launches run np=2, 3, 4 in turns, round after round, with 1 thread each; np > cores is
oversubscribed (Open MPI yields the CPU while waiting), so compare variants within a row.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import cnnx_model, run_header
from distributed import mpirun, table

import cnnx
from cnnx._allreduce import BucketReducer


class _GeneralLayout:
    """A ReductionTree taken as if recursive halving could not apply."""

    def __init__(self, tree):
        self.fragments, self.combine, self.pairs_by_rank_bits = tree.fragments, tree.combine, False


def worker(args) -> None:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    size, rank = comm.Get_size(), comm.Get_rank()
    cnnx.set_num_threads(1)
    model = cnnx_model(cnnx.optimizers.Adam())
    model.build((None, 28, 28, 1))
    results = {}
    for s in args.micro_batches:
        if size > s:
            continue
        step = cnnx._core.DataParallelStep(model._core, s, rank, size, 256 * 1024 // 4, 0)
        buckets = step.buckets()
        tree = cnnx._core.ReductionTree(s, size)
        fragments = step.fragments()
        for f in fragments:  # zeros: repeated sums in place stay finite (the time does not depend on values)
            f[:] = 0.0
        largest = max(e - b for b, e in buckets)
        variants = {"mpi": None, "general": BucketReducer(comm, _GeneralLayout(tree), fragments, largest)}
        if tree.pairs_by_rank_bits:
            variants["halving"] = BucketReducer(comm, tree, fragments, largest)
        names = sorted(variants)
        times: dict[str, list[float]] = {n: [] for n in names}
        for rep in range(args.repeats + 10):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                comm.Barrier()
                start = time.perf_counter()
                reducer = variants[name]
                for k, (b, e) in enumerate(buckets):
                    if reducer is None:
                        comm.Allreduce(MPI.IN_PLACE, fragments[0][b:e], op=MPI.SUM)
                    else:
                        reducer.reduce(b, e, tag=k)
                elapsed = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
                if rep >= 10:  # warm-up
                    times[name].append(elapsed)
        results[str(s)] = {
            "floats": len(step.buffer()),
            "buckets": len(buckets),
            "max_fragments": max([sum(1 for *_, r in tree.fragments if r == p) for p in range(size)]),
            "times": times,
        }
        del step
    if rank == 0:
        print("RESULT " + json.dumps(results), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=200, help="timed sums of every bucket per variant per launch")
    p.add_argument("--micro-batches", type=int, nargs="+", default=[4, 12])
    p.add_argument("--processes", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    header = run_header() + [
        f"the article network's gradient buffer in 256 KiB buckets; medians over {args.rounds} rounds x "
        f"{args.repeats} sums of every bucket; 1 thread per process, shared memory over loopback",
    ]
    print("\n".join(header), file=sys.stderr, flush=True)
    got: dict[tuple[int, str], dict] = {}
    for r in range(args.rounds):
        order = args.processes[r % len(args.processes) :] + args.processes[: r % len(args.processes)]
        for processes in order:
            cmd = mpirun(processes) + [sys.executable, str(Path(__file__).resolve()), "--worker"]
            cmd += ["--repeats", str(args.repeats), "--micro-batches", *map(str, args.micro_batches)]
            print(f"[np={processes}] ...", file=sys.stderr, flush=True)
            out = subprocess.run(
                cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1")
            )
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
            if out.returncode != 0 or not lines:
                sys.exit(f"allreduce.py: {shlex.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
            for s, d in json.loads(lines[-1][len("RESULT ") :]).items():
                acc = got.setdefault((processes, s), {**d, "times": {k: [] for k in d["times"]}})
                for k, v in d["times"].items():
                    acc["times"][k] += v

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:.3f}" if values else "-"

    rows = []
    for (processes, s), d in sorted(got.items(), key=lambda kv: (int(kv[0][1]), kv[0][0])):
        t = d["times"]
        mpi = statistics.median(t["mpi"])
        rows.append(
            [
                str(processes),
                s,
                str(d["max_fragments"]),
                f"{d['floats'] * 4 / 1024:.0f} KiB / {d['buckets']}",
                ms(t["mpi"]),
                ms(t.get("halving", [])),
                ms(t["general"]),
                f"{statistics.median(t['general']) / mpi:.2f}x",
            ]
        )
    head = [
        "np",
        "micro_batches",
        "fragments/process",
        "buffer / buckets",
        "mpi ms",
        "halving ms",
        "general ms",
        "general / mpi",
    ]
    prefix = "- " if args.markdown else ""
    print("\n".join(prefix + h for h in header))
    print()
    print(table(head, rows, args.markdown))


if __name__ == "__main__":
    main()
