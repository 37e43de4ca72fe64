"""The examples as a user runs them: whole trainings on real data, so marked `slow`
(`python -m pytest -m "not slow"` skips them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import local_mnist_directory

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not EXAMPLES.is_dir(), reason="the examples are not beside the tests"),
]


def run_example(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def test_mnist_cnn_reaches_99_percent(tmp_path):
    """The README's first command: the article's network on real MNIST, 99% after two epochs."""
    if local_mnist_directory() is None:
        pytest.skip("no local MNIST files ($CNNX_DATA_DIR/mnist, data/mnist or ../shared/data/mnist)")
    out = run_example(EXAMPLES / "mnist_cnn.py", "--epochs", "2", "--verbose", "0", cwd=tmp_path)
    acc = float(re.search(r"test accuracy: ([0-9.]+)%", out).group(1))
    assert acc >= 99.0, out


def test_image_folder_example_learns_digits(tmp_path):
    """examples/make_digit_folder.py then examples/image_folder_cnn.py, as their docstring says."""
    pytest.importorskip("PIL")
    pytest.importorskip("matplotlib")
    run_example(EXAMPLES / "make_digit_folder.py", tmp_path / "digits", "--count", "1000", cwd=tmp_path)
    out = run_example(
        EXAMPLES / "image_folder_cnn.py",
        tmp_path / "digits",
        "--size",
        "28",
        "28",
        "--color-mode",
        "grayscale",
        "--epochs",
        "6",
        "--out",
        tmp_path / "run",
        cwd=tmp_path,
    )
    assert sorted(p.name for p in (tmp_path / "run").glob("*.png")), out
    acc = float(re.search(r"^\s*accuracy\s+([0-9.]+)", out, re.M).group(1))  # the report's line
    assert acc > 0.85, out


def test_resnet_example_learns_cifar10(tmp_path):
    """examples/resnet_cifar10.py on part of the shared CIFAR-10 photos: a functional ResNet with
    residual adds, BatchNormalization and in-model augmentation learns well above chance."""
    pytest.importorskip("PIL")
    tar = ROOT.parent / "shared" / "data" / "cifar10" / "cifar10-jpg-40k.tar"
    if not tar.is_file():
        pytest.skip(f"no CIFAR-10 photos at {tar}")
    out = run_example(
        EXAMPLES / "resnet_cifar10.py",
        "--data",
        tar,
        "--limit",
        "6000",
        "--epochs",
        "4",
        "--batch-size",
        "32",
        cwd=tmp_path,
    )
    assert re.search(r"^epoch 4: [0-9.]+ s", out, re.M), out
    assert "planned activations + gradients at batch 32" in out, out
    acc = float(re.search(r"^test_accuracy=([0-9.]+)$", out, re.M).group(1))
    assert acc > 0.35, out
