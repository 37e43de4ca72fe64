"""examples/mnist_distributed.py as a user launches it, `mpirun -np 2 python ...`, on part of
MNIST (a whole training is for the README, not the test suite). Skipped without mpi4py, without
mpirun (next to the Python running the tests, as `pip install "cnnx[mpi]"` puts it, or on PATH)
or without the MNIST files."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import local_mnist_directory

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mnist_distributed.py"
QUICK = ["--epochs", "1", "--limit", "1024", "--batch-size", "64"]  # 16 steps: about 10 s with mpirun's start


def find_mpirun() -> str | None:
    beside = Path(sys.executable).parent / "mpirun"
    return str(beside) if beside.is_file() else shutil.which("mpirun")


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not EXAMPLE.is_file(), reason="the examples are not beside the tests"),
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason='no mpi4py (pip install "cnnx[mpi]")'),
    pytest.mark.skipif(find_mpirun() is None, reason='no mpirun (pip install "cnnx[mpi]")'),
]


@pytest.fixture(scope="module", autouse=True)
def _mnist():
    if local_mnist_directory() is None:
        pytest.skip("no local MNIST files ($CNNX_DATA_DIR/mnist, data/mnist or ../shared/data/mnist)")


def run_example(processes: int, *args: str, cwd: Path) -> str:
    command = [sys.executable, str(EXAMPLE), *args]
    if processes:
        # --oversubscribe: a CI machine with one core still starts two processes.
        launch = [find_mpirun(), "-np", str(processes), "--oversubscribe"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            launch.append("--allow-run-as-root")  # containers; Open MPI refuses root otherwise
        command = launch + command
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("CNNX_DATA_DIR", str(local_mnist_directory().parent))
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_two_processes_print_once(tmp_path):
    """Both processes train, rank 0 alone prints the progress and the result line."""
    out = run_example(2, *QUICK, cwd=tmp_path)
    assert "num_processes=2" in out, out
    assert len(re.findall(r"^Epoch 1/1$", out, re.M)) == 1, out  # fit's progress: rank 0 only
    results = re.findall(r"^test_accuracy=(0\.\d{4})$", out, re.M)
    assert len(results) == 1, out
    assert float(results[0]) > 0.5, out  # 16 steps from chance (0.1): it learns


def test_resume_with_another_process_count(tmp_path):
    """Epoch 1 on two processes writes the checkpoint; a one-process run resumes at epoch 2 and
    ends with the same weights as two epochs on two processes without a stop."""
    ckpt = tmp_path / "run.cnnx"
    args = ["--limit", "1024", "--batch-size", "64", "--verbose", "0"]
    run_example(2, *args, "--epochs", "1", "--checkpoint", str(ckpt), cwd=tmp_path)
    assert ckpt.is_file()
    resumed = run_example(0, *args, "--epochs", "2", "--checkpoint", str(ckpt), cwd=tmp_path)
    assert "resuming from" in resumed and "after epoch 1" in resumed, resumed
    straight = run_example(2, *args, "--epochs", "2", cwd=tmp_path)

    def weight_sum(out: str) -> str:
        return re.search(r"^sum of the weights: (\S+)", out, re.M).group(1)

    assert weight_sum(resumed) == weight_sum(straight), resumed + straight
