"""Runs the model-file fuzzer for N seconds and prints what it did.

    pip install ".[fuzz]"
    python fuzz/run.py 60                 # CI: one minute
    python fuzz/run.py 300 --keep work/   # longer, keeping the grown corpus in work/

The seed corpus fuzz/corpus/ is only read; inputs the fuzzer finds interesting go to a scratch
directory (or --keep). A finding (crash, uncaught exception, timeout, out-of-memory) is saved
under fuzz/findings/ and makes this script exit nonzero; reproduce it with
`python fuzz/fuzz_load_model.py fuzz/findings/<file>`. The full libFuzzer log is written to
fuzz/findings/last-run.log.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=int, nargs="?", default=60)
    parser.add_argument("--keep", help="directory for the grown corpus (default: a temporary directory)")
    parser.add_argument("--memory-mb", type=int, default=3072, help="address-space and RSS limit of the fuzzer")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take before it is a finding")
    parser.add_argument(
        "--allow-memory-error",
        action="store_true",
        help="do not count MemoryError as a finding (a configuration asking for more weights than "
        "memory holds: the core's parameter budget turns that into ValueError)",
    )
    args = parser.parse_args()

    findings = os.path.join(HERE, "findings")
    os.makedirs(findings, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.keep or scratch
        os.makedirs(work, exist_ok=True)
        log_path = os.path.join(findings, "last-run.log")
        command = [
            sys.executable,
            os.path.join(HERE, "fuzz_load_model.py"),
            work,
            os.path.join(HERE, "corpus"),
            f"-max_total_time={args.seconds}",
            f"-rss_limit_mb={args.memory_mb}",
            f"-timeout={args.timeout}",
            f"-dict={os.path.join(HERE, 'cnnx.dict')}",
            "-print_final_stats=1",
            f"-artifact_prefix={findings}{os.sep}",
        ]
        env = {**os.environ, "CNNX_FUZZ_MEMORY_MB": str(args.memory_mb + 512)}  # RSS limit trips first
        if args.allow_memory_error:
            env["CNNX_FUZZ_ALLOW_MEMORY_ERROR"] = "1"
        with open(log_path, "w") as log:
            rc = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        text = open(log_path).read()
        corpus_files = len(os.listdir(work))
        corpus_bytes = sum(os.path.getsize(os.path.join(work, f)) for f in os.listdir(work))

    status = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", text, re.M)
    runs = re.search(r"stat::number_of_executed_units: (\d+)", text)
    speed = re.search(r"stat::average_exec_per_sec:\s+(\d+)", text)
    artifacts = re.findall(r"Test unit written to (\S+)", text)
    if status:
        n, cov, ft, corp, size = status[-1]
        print(
            f"executions: {runs.group(1) if runs else n} ({speed.group(1) if speed else '?'}/s) in {args.seconds} s; "
            f"coverage: {cov} edges, {ft} features; corpus: {corp} inputs ({size}) in the fuzzer, "
            f"{corpus_files} new files ({corpus_bytes / 1024:.0f} KB) written"
        )
    else:
        print("the fuzzer printed no status line; see", log_path)
    if rc != 0 or artifacts:
        tail = text[text.rfind("=== Uncaught") if "=== Uncaught" in text else max(0, len(text) - 3000) :]
        print(tail[:6000])
        print(f"FINDING (exit {rc}): {', '.join(artifacts) or 'see ' + log_path}")
        return rc or 1
    print("findings: none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
