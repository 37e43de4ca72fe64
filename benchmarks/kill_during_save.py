"""kill -9 during model.save: the previous file must always load, and no temp file may outlive
the next save or load in that directory.

Each try starts a child process that saves a large-ish model to the same path over and over,
SIGKILLs it at a random moment, then checks (1) load_model(path) succeeds, (2) after that load
no temp file of a dead writer is left, and (3) the same after a save from this process.

    python benchmarks/kill_during_save.py --tries 30 --megabytes 48

Prints one line per try and a summary; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys, numpy as np, cnnx
from cnnx.layers import Input, Dense
units = int(sys.argv[2])
model = cnnx.Sequential([Input((units,)), Dense(units), Dense(10)])
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(np.ones((4, units), np.float32), np.zeros(4, int), epochs=1, verbose=0)  # optimizer slots too
i = 0
while True:
    model.save(sys.argv[1])
    i += 1
    print(i, flush=True)
"""


def temp_files(directory: str) -> list[str]:
    """Everything but the model file itself (so a temp file of any naming counts)."""
    return sorted(n for n in os.listdir(directory) if n != "m.cnnx")


def run(tries: int, megabytes: float, seed: int, max_delay: float = 1.0, verbose: bool = True) -> dict:
    import cnnx

    # weights + two Adam slots of a units x units Dense: 12 * units**2 bytes
    units = max(16, int((megabytes * 2**20 / 12) ** 0.5))
    rng = random.Random(seed)
    stats = {
        "tries": tries,
        "loaded": 0,
        "stray_after_kill": 0,
        "stray_bytes_after_kill": 0,
        "stray_after_load": 0,
        "stray_after_save": 0,
        "saves_completed": 0,
        "failures": [],
    }
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "m.cnnx")
        for t in range(tries):
            child = subprocess.Popen([sys.executable, "-c", CHILD, path, str(units)], stdout=subprocess.PIPE, text=True)
            first = child.stdout.readline()  # the first save has completed: a previous file exists
            if not first:
                child.wait()
                stats["failures"].append(f"try {t}: the child exited before saving (rc {child.returncode})")
                continue
            time.sleep(rng.uniform(0.0, max_delay))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            rest = child.stdout.read().split()
            child.stdout.close()
            stats["saves_completed"] += 1 + len(rest)
            stray = temp_files(directory)
            stats["stray_after_kill"] += len(stray)
            stats["stray_bytes_after_kill"] += sum(os.path.getsize(os.path.join(directory, n)) for n in stray)
            try:
                model = cnnx.models.load_model(path)
                stats["loaded"] += 1
            except Exception as e:  # the check is that this never happens
                stats["failures"].append(f"try {t}: load_model failed: {type(e).__name__}: {e}")
                model = None
            left = temp_files(directory)
            stats["stray_after_load"] += len(left)
            if left:
                stats["failures"].append(f"try {t}: temp files left after load: {left}")
            if model is not None:
                model.save(path)
                left = temp_files(directory)
                stats["stray_after_save"] += len(left)
                if left:
                    stats["failures"].append(f"try {t}: temp files left after save: {left}")
            if verbose:
                print(
                    f"try {t + 1:2d}: killed after {1 + len(rest)} saves; {len(stray)} temp file(s) "
                    f"after the kill, {len(left)} after load + save",
                    flush=True,
                )
    stats["file_megabytes"] = 12 * units * units / 2**20
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=30)
    parser.add_argument("--megabytes", type=float, default=48.0, help="approximate size of the saved file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=1.0, help="seconds after the first save to kill within")
    args = parser.parse_args()
    s = run(args.tries, args.megabytes, args.seed, args.max_delay)
    print(
        f"{s['tries']} kills of a process saving a {s['file_megabytes']:.0f} MB model ({s['saves_completed']} "
        f"saves completed): previous file loaded {s['loaded']}/{s['tries']}; temp files left by the kills: "
        f"{s['stray_after_kill']} ({s['stray_bytes_after_kill'] / 2**20:.0f} MB), after the next load: "
        f"{s['stray_after_load']}, after the next save: {s['stray_after_save']}"
    )
    for f in s["failures"]:
        print("FAILED:", f)
    return 1 if s["failures"] or s["loaded"] != s["tries"] else 0


if __name__ == "__main__":
    sys.exit(main())
