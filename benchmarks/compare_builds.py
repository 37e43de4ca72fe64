"""Two builds of cnnx side by side: is a change free of slowdowns on the article's network?

    python benchmarks/compare_builds.py --before /path/venv-old/bin/python --after /path/venv-new/bin/python
                                        [--repeats 5] [--threads 2] [--markdown]

Each interpreter must import its own installed cnnx (e.g. `pip install .` of the previous commit in
one virtual environment and of this one in another). For every round, a fresh process of each build
(before, after, before, after, ...) times a training step (Adam) at batch 32 and 128 and inference
at batch 256 on the article's network, after a warm-up; the table shows the medians over rounds and
after/before ratios (higher than 1 = the new build is slower for times). Prints the CPU and ISA.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = r"""
import json, sys, time
import numpy as np
import cnnx
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

threads = int(sys.argv[1])
cnnx.set_num_threads(threads)
cnnx.utils.set_random_seed(0)
model = cnnx.Sequential([
    Input((28, 28, 1)),
    Conv2D(32, 3, activation="relu"), MaxPooling2D(2),
    Conv2D(64, 3, activation="relu"), MaxPooling2D(2),
    Conv2D(128, 3, activation="relu"), MaxPooling2D(2),
    Flatten(), Dense(100, activation="relu"), Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
model.build()
rng = np.random.default_rng(0)
x = rng.random((1024, 28, 28, 1), dtype=np.float32)
y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 1024)]
out = {"isa": cnnx._core.get_isa()}

def median_time(f, reps):
    f(); f()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return float(np.median(times))

for batch in (32, 128):
    idx = np.arange(batch, dtype=np.int64)
    out[f"train_step_b{batch}_ms"] = 1e3 * median_time(lambda: model._core.train_step(x, y, idx), 15)
out["predict_b256_ms"] = 1e3 * median_time(lambda: model._core.predict(x[:256], 256), 15)
print(json.dumps(out))
"""


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def run(python: str, threads: int) -> dict:
    res = subprocess.run([python, "-c", PROBE, str(threads)], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="python of the environment with the old build")
    ap.add_argument("--after", required=True, help="python of the environment with the new build")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for which in ("before", "after"):
            results[which].append(run(getattr(args, which), args.threads))
    isa = results["after"][0]["isa"]
    keys = [k for k in results["after"][0] if k != "isa"]
    print(f"# {cpu_name()}, ISA {isa}, {args.threads} thread(s), {args.repeats} alternating rounds (medians)")
    rows = [("measure", "before", "after", "after/before")]
    for k in keys:
        b = statistics.median(r[k] for r in results["before"])
        a = statistics.median(r[k] for r in results["after"])
        rows.append((k, f"{b:.2f}", f"{a:.2f}", f"{a / b:.3f}"))
    if args.markdown:
        print("| " + " | ".join(rows[0]) + " |")
        print("|" + "---|" * len(rows[0]))
        for r in rows[1:]:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for r in rows:
            print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
