"""Builds the model-file fuzz target (fuzz/cpp/fuzz_model_file.cpp: libFuzzer on the core's
reader, under AddressSanitizer + UBSan), runs it for N seconds and prints what it did.

    python fuzz/run.py 60                 # CI: one minute
    python fuzz/run.py 1800 --keep work/  # longer, keeping the grown corpus in work/

Needs CMake and Clang with libFuzzer (Debian: apt-get install clang; clang++-14 and newer are
found). The build goes to fuzz/build/ (incremental). With the core's load_model_from_memory in
the sources, the target loads whole models (configuration and rebuild too), else the container.

The seed corpus fuzz/corpus/ is only read; inputs the fuzzer finds interesting go to a scratch
directory (or --keep). A finding (crash, sanitizer report, an exception other than cnnx::Error,
timeout, out-of-memory) is saved under fuzz/findings/ and makes this script exit nonzero;
reproduce it with `fuzz/build/fuzz_model_file fuzz/findings/<file>`. The full libFuzzer log is
written to fuzz/findings/last-run.log.

Then, when cnnx and h5py are installed, fuzz/h5_mutate.py mutates Keras HDF5 files (.h5,
.weights.h5, .keras) for --h5-seconds (default 10) through cnnx's Python readers; its findings
are saved as fuzz/findings/h5-* and also make this script exit nonzero.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(HERE, "build")
TARGET = os.path.join(BUILD, "fuzz_model_file")


def clang() -> str:
    for name in ["clang++", *(f"clang++-{v}" for v in range(20, 13, -1))]:
        path = shutil.which(name)
        if path:
            return path
    sys.exit("fuzz/run.py: no clang++ found (libFuzzer needs Clang: apt-get install clang)")


def has_model_loader() -> bool:
    """Whether the core defines load_model_from_memory (not just declares it)."""
    pattern = re.compile(r"load_model_from_memory\s*\([^;{]*\)\s*\{")
    for path in glob.glob(os.path.join(ROOT, "src", "cpp", "**", "*.cpp"), recursive=True):
        if "bindings" not in path and pattern.search(open(path, encoding="utf-8").read()):
            return True
    return False


def build() -> bool:
    model = has_model_loader()
    configure = [
        "cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=RelWithDebInfo", f"-DCMAKE_CXX_COMPILER={clang()}",
        "-DCNNX_BUILD_FUZZER=ON", "-DCNNX_USE_OPENMP=OFF", f"-DCNNX_FUZZ_MODEL={'ON' if model else 'OFF'}",
    ]  # fmt: skip
    for command in (configure, ["cmake", "--build", BUILD, "-j", "2", "--target", "fuzz_model_file"]):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"fuzz/run.py: {' '.join(command)} failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=int, nargs="?", default=60)
    parser.add_argument("--keep", help="directory for the grown corpus (default: a temporary directory)")
    parser.add_argument("--memory-mb", type=int, default=2048, help="RSS limit, and limit of one allocation")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take before it is a finding")
    parser.add_argument(
        "--h5-seconds", type=float, default=10, help="then mutate Keras HDF5 files for this long (fuzz/h5_mutate.py)"
    )
    args = parser.parse_args()

    model = build()
    findings = os.path.join(HERE, "findings")
    os.makedirs(findings, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or scratch
        os.makedirs(work, exist_ok=True)
        log_path = os.path.join(findings, "last-run.log")
        command = [
            TARGET,
            work,
            os.path.join(HERE, "corpus"),
            f"-max_total_time={args.seconds}",
            f"-rss_limit_mb={args.memory_mb}",
            f"-timeout={args.timeout}",
            f"-dict={os.path.join(HERE, 'cnnx.dict')}",
            "-print_final_stats=1",
            f"-artifact_prefix={findings}{os.sep}",
        ]
        with open(log_path, "w") as log:
            rc = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        text = open(log_path, errors="replace").read()
        corpus_files = len(os.listdir(work))
        corpus_bytes = sum(os.path.getsize(os.path.join(work, f)) for f in os.listdir(work))

    h5_findings = h5_stage(args.h5_seconds)
    status = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", text, re.M)
    runs = re.search(r"stat::number_of_executed_units: (\d+)", text)
    speed = re.search(r"stat::average_exec_per_sec:\s+(\d+)", text)
    rss = re.search(r"stat::peak_rss_mb:\s+(\d+)", text)
    artifacts = re.findall(r"Test unit written to (\S+)", text)
    what = "whole models (load_model_from_memory)" if model else "the container (parse_model_file)"
    if status:
        n, cov, ft, corp, size = status[-1]
        print(
            f"target: {what}\n"
            f"executions: {runs.group(1) if runs else n} ({speed.group(1) if speed else '?'}/s) in {args.seconds} s; "
            f"coverage: {cov} edges, {ft} features; corpus: {corp} inputs ({size}) in the fuzzer, "
            f"{corpus_files} new files ({corpus_bytes / 1024:.0f} KB) written; peak RSS {rss.group(1) if rss else '?'} MB"
        )
    else:
        print("the fuzzer printed no status line; see", log_path)
    if rc != 0 or artifacts:
        start = max(text.rfind("==ERROR"), text.rfind("FINDING:"), text.rfind("terminate called"))
        print(text[start if start >= 0 else max(0, len(text) - 3000) :][:6000])
        print(f"FINDING (exit {rc}): {', '.join(artifacts) or 'see ' + log_path}")
        return rc or 1
    if h5_findings:
        print(f"FINDING: {h5_findings} in the HDF5 mutation run (fuzz/findings/h5-*)")
        return 1
    print("findings: none")
    return 0


def h5_stage(seconds: float) -> int:
    """The Keras HDF5 readers (Python, through cnnx's libhdf5 watchdog) under byte mutations,
    when cnnx and h5py are installed; the number of findings."""
    try:
        import h5py  # noqa: F401

        import cnnx  # noqa: F401
    except ImportError as e:
        print(f"HDF5 mutations: skipped ({e})")
        return 0
    sys.path.insert(0, HERE)
    import h5_mutate

    return h5_mutate.run(seconds)


if __name__ == "__main__":
    sys.exit(main())
