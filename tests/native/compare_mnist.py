"""The native examples against Python on the 10,000 MNIST test images (issue 13's must-show).

Trains the article's network with examples/mnist_cnn.py --save (or takes --model), runs
examples/native's classify (C++ API) and classify_c (C API) on the raw test-images IDX file, and
compares their probabilities with Python's load_model(...).predict: the same class for every
image, and the largest absolute probability difference at most --tolerance (1e-5).

    python tests/native/compare_mnist.py [--model M.cnnx] [--examples DIR | --prefix P] [--epochs 1]

--examples: a build of examples/native (holding classify and classify_c); --prefix: an installed
cnnx to build them against; neither: the library is built and installed into a temporary prefix
first (CMake, a few minutes). Exit status 1 when a comparison fails.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(cmd, **kw):
    print("$", " ".join(map(str, cmd)), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def build_examples(work, prefix):
    jobs = os.environ.get("CNNX_NATIVE_JOBS", "2")
    if prefix is None:
        prefix = work / "prefix"
        run(["cmake", "-S", ROOT, "-B", work / "build", "-DCMAKE_BUILD_TYPE=Release"], stdout=subprocess.DEVNULL)
        run(["cmake", "--build", work / "build", "-j", jobs], stdout=subprocess.DEVNULL)
        run(["cmake", "--install", work / "build", "--prefix", prefix], stdout=subprocess.DEVNULL)
    out = work / "examples"
    run(
        ["cmake", "-S", ROOT / "examples/native", "-B", out, f"-DCMAKE_PREFIX_PATH={prefix}"], stdout=subprocess.DEVNULL
    )
    run(["cmake", "--build", out, "-j", jobs], stdout=subprocess.DEVNULL)
    return out


def read_csv(path, classes):
    rows = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(2, 2 + classes), dtype=np.float64)
    return rows.reshape(-1, classes)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=pathlib.Path, help="a saved model (default: train one)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of mnist_cnn.py when training")
    parser.add_argument("--examples", type=pathlib.Path, help="a build directory of examples/native")
    parser.add_argument("--prefix", type=pathlib.Path, help="an installed cnnx to build the examples against")
    parser.add_argument("--tolerance", type=float, default=1e-5)
    args = parser.parse_args()

    import cnnx

    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        examples = args.examples or build_examples(work, args.prefix)
        model_path = args.model
        if model_path is None:
            model_path = work / "mnist.cnnx"
            run(
                [
                    sys.executable,
                    ROOT / "examples/mnist_cnn.py",
                    "--epochs",
                    str(args.epochs),
                    "--verbose",
                    "0",
                    "--save",
                    model_path,
                ]
            )

        (_, _), (x_test, y_test) = cnnx.datasets.mnist.load_data()
        # The examples read raw IDX: the same bytes the loader read, without gzip.
        images = work / "t10k-images-idx3-ubyte"
        labels = work / "t10k-labels-idx1-ubyte"
        header = np.array([0x00000803, len(x_test), 28, 28], ">u4").tobytes()
        images.write_bytes(header + np.ascontiguousarray(x_test, np.uint8).tobytes())
        labels.write_bytes(np.array([0x00000801, len(y_test)], ">u4").tobytes() + y_test.astype(np.uint8).tobytes())

        model = cnnx.models.load_model(model_path)
        start = time.perf_counter()
        expected = model.predict(x_test[..., None].astype("float32") / 255, batch_size=256, verbose=0)
        python_seconds = time.perf_counter() - start
        classes = expected.shape[1]
        print(f"python predict: {python_seconds:.2f} s, accuracy {np.mean(expected.argmax(1) == y_test):.2%}")

        failed = False
        for program in ("classify", "classify_c"):
            csv = work / f"{program}.csv"
            start = time.perf_counter()
            run([examples / program, model_path, "--divide", "255", "--labels", labels, "--csv", csv, images])
            seconds = time.perf_counter() - start
            got = read_csv(csv, classes)
            same_class = int(np.sum(got.argmax(1) == expected.argmax(1)))
            max_diff = float(np.max(np.abs(got - expected)))
            # %.9g round-trips a float32: parsed back as float32, equal values are equal bits.
            identical = int(np.sum(got.astype(np.float32) == expected))
            ok = got.shape == expected.shape and same_class == len(expected) and max_diff <= args.tolerance
            failed |= not ok
            print(
                f"{program}: {seconds:.2f} s (whole program), same class on {same_class} / {len(expected)} images, "
                f"max |prob diff| {max_diff:.3g} (tolerance {args.tolerance:g}), {identical} / {expected.size} "
                f"probabilities the same float32: {'OK' if ok else 'FAILED'}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
