"""Mutation fuzzing of cnnx's Keras HDF5 reading (python/cnnx/keras_format, through _h5_guard):
small models saved as .h5, .weights.h5 and .keras, with a few bytes changed (the .keras file's
model.weights.h5 inside the zip), loaded with load_model / load_weights for N seconds. Every load
must end with the model or a ValueError naming the file; another exception, or a load that
outlasts the guard's time limit by far, is a finding, saved under fuzz/findings/h5-*.

    python fuzz/h5_mutate.py 30 [--seed 0]

Needs cnnx installed and h5py (fuzz/run.py runs it after the libFuzzer run when both import).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import traceback
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
LIMIT_S = 5  # the guard's limit during the run: a hang costs this much
MARGIN_S = 20


def _rezip(keras_blob: bytes, weights: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(keras_blob)) as z, zipfile.ZipFile(out, "w") as w:
        for name in z.namelist():
            w.writestr(name, weights if name == "model.weights.h5" else z.read(name))
    return out.getvalue()


def run(seconds: float, seed: int = 0) -> int:
    """Mutates and loads for `seconds`; prints a summary; returns the number of findings."""
    os.environ["CNNX_H5_READ_TIMEOUT"] = str(LIMIT_S)
    import numpy as np

    import cnnx
    from cnnx import layers

    def model() -> cnnx.Model:
        m = cnnx.Sequential(
            [cnnx.Input((6, 6, 1)), layers.Conv2D(2, 3), layers.BatchNormalization(), layers.Flatten(), layers.Dense(2)]
        )
        m.compile(optimizer="adam", loss="mse")
        return m

    rng = np.random.default_rng(seed)
    findings_dir = os.path.join(HERE, "findings")
    counts = {"loaded": 0, "refused": 0, "timed out": 0, "findings": 0}
    with tempfile.TemporaryDirectory() as tmp:
        source = model()
        source.fit(np.ones((2, 6, 6, 1), np.float32), np.zeros((2, 2), np.float32), epochs=1, verbose=0)
        source.save(os.path.join(tmp, "m.h5"))
        source.save_weights(os.path.join(tmp, "w.weights.h5"))
        source.save(os.path.join(tmp, "m.keras"))
        with zipfile.ZipFile(os.path.join(tmp, "m.keras")) as z:
            inner = z.read("model.weights.h5")
        seeds = {}
        for name in ("m.h5", "w.weights.h5", "m.keras"):
            with open(os.path.join(tmp, name), "rb") as f:
                seeds[name] = f.read()
        loaders = {
            "m.h5": cnnx.models.load_model,
            "w.weights.h5": lambda p: model().load_weights(p),
            "m.keras": cnnx.models.load_model,
        }
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            name = list(seeds)[i % 3]
            i += 1
            blob = bytearray(inner if name == "m.keras" else seeds[name])
            for _ in range(int(rng.integers(1, 5))):  # header bytes more often: the structure lives there
                pos = int(rng.integers(0, min(4096, len(blob)) if rng.random() < 0.6 else len(blob)))
                blob[pos] ^= int(rng.integers(1, 256))
            data = _rezip(seeds[name], bytes(blob)) if name == "m.keras" else bytes(blob)
            path = os.path.join(tmp, f"mutant-{name}")
            with open(path, "wb") as f:
                f.write(data)
            start = time.monotonic()
            problem = None
            try:
                loaders[name](path)
                counts["loaded"] += 1
            except ValueError as e:
                if repr(path) not in str(e):
                    problem = f"the ValueError does not name the file: {e}"
                elif "did not finish" in str(e):
                    counts["timed out"] += 1
                else:
                    counts["refused"] += 1
            except Exception:
                problem = traceback.format_exc()
            if problem is None and time.monotonic() - start > LIMIT_S + MARGIN_S:
                problem = f"the load took {time.monotonic() - start:.1f} s"
            if problem is not None:
                counts["findings"] += 1
                os.makedirs(findings_dir, exist_ok=True)
                saved = os.path.join(findings_dir, f"h5-{seed}-{i}-{name}")
                with open(saved, "wb") as f:
                    f.write(data)
                print(f"FINDING ({saved}):\n{problem}")
    print(
        f"HDF5 mutations (.h5, .weights.h5, .keras): {i} loads in {seconds:g} s: {counts['loaded']} loaded, "
        f"{counts['refused']} refused, {counts['timed out']} refused after the {LIMIT_S} s limit, "
        f"findings: {counts['findings'] or 'none'}"
    )
    return counts["findings"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=float, nargs="?", default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    return 1 if run(args.seconds, args.seed) else 0


if __name__ == "__main__":
    sys.exit(main())
