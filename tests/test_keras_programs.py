"""Eleven public Keras / TensorFlow programs, ported to cnnx by changing their imports
(tests/keras_programs/README.md says exactly what else differs), each run as a user runs it: a
fresh process, in an empty working directory. They train on slices of real data
(KERAS_PROGRAM_QUICK=1), so they are marked `slow`; each must run through, and the ones that print
a test accuracy must beat chance clearly."""

from __future__ import annotations

import io
import os
import pickle
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).resolve().parent / "keras_programs"
CIFAR_TAR = ROOT.parent / "shared" / "data" / "cifar10" / "cifar10-jpg-40k.tar"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

pytestmark = pytest.mark.slow


def _cifar_photos(per_class: int, classes=CLASSES) -> dict:
    """{class: [jpeg bytes, ...]} for the first `per_class` photos of each class in the tar."""
    if not CIFAR_TAR.is_file():
        pytest.skip(f"no CIFAR-10 photos at {CIFAR_TAR}")
    out: dict = {c: [] for c in classes}
    with tarfile.open(CIFAR_TAR) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[2] in out and int(parts[3][:-4]) < 1000 + per_class:
                out[parts[2]].append(tar.extractfile(member).read())
    return out


@pytest.fixture(scope="module")
def photos():
    return _cifar_photos(300)


def _write_folders(root: Path, photos: dict, classes, per_class: int) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        for i, data in enumerate(photos[c][:per_class]):
            (root / c / f"{i:04d}.jpg").write_bytes(data)
    return root


def _write_cifar_batches(root: Path, photos: dict) -> Path:
    """The Python-pickle form cnnx.datasets.cifar10.load_data reads (CIFAR-10's own layout), made
    from the shared JPEG photos: five training batches and a test batch."""
    from PIL import Image

    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows, labels = [], []
    for label, c in enumerate(CLASSES):
        for data in photos[c][:250]:
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.uint8)
            rows.append(pixels.transpose(2, 0, 1).reshape(-1))
            labels.append(label)
    order = np.random.default_rng(0).permutation(len(rows))
    rows, labels = np.stack(rows)[order], [labels[i] for i in order]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        part = slice(k * len(rows) // 6, (k + 1) * len(rows) // 6)
        batch = {b"data": np.ascontiguousarray(rows[part]), b"labels": [int(v) for v in labels[part]]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def run_program(name: str, cwd: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, str(PROGRAMS / name)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "KERAS_PROGRAM_QUICK": "1", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1", **env},
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done.stdout


def _accuracy(out: str, pattern: str) -> float:
    found = re.findall(pattern, out, re.M)
    assert found, out[-3000:]
    return float(found[-1])


def test_mnist_convnet(tmp_path):
    out = run_program("mnist_convnet.py", tmp_path)
    assert _accuracy(out, r"^Test accuracy: ([0-9.]+)$") > 0.9


def test_sequential_model_guide(tmp_path):
    out = run_program("sequential_model_guide.py", tmp_path)
    assert "sequential_model_guide: done" in out


def test_training_with_built_in_methods(tmp_path):
    out = run_program("training_with_built_in_methods.py", tmp_path)
    assert "training_with_built_in_methods: done" in out


def test_writing_your_own_callbacks(tmp_path):
    out = run_program("writing_your_own_callbacks.py", tmp_path)
    assert "writing_your_own_callbacks: done" in out
    assert "Epoch 3: Learning rate is 0.05." in out


def test_fashion_classification(tmp_path):
    # No Fashion-MNIST files here: the program reads MNIST, which has the same form.
    out = run_program("fashion_classification.py", tmp_path, KERAS_PROGRAM_FASHION="0")
    assert _accuracy(out, r"^test_accuracy=([0-9.]+)$") > 0.85


def test_save_and_load(tmp_path):
    pytest.importorskip("h5py")
    out = run_program("save_and_load.py", tmp_path)
    assert "save_and_load: done" in out


def test_article_exercise(tmp_path):
    out = run_program("article_exercise.py", tmp_path)
    assert _accuracy(out, r"^test_accuracy=([0-9.]+)$") > 0.85


def test_tf_images_cnn(tmp_path, photos):
    pytest.importorskip("PIL")
    data = _write_cifar_batches(tmp_path / "data", photos)
    out = run_program("tf_images_cnn.py", tmp_path, CNNX_DATA_DIR=str(data))
    assert float(out.strip().splitlines()[-1]) > 0.15  # ten classes: chance is 0.1


def test_image_classification_from_scratch(tmp_path, photos):
    pytest.importorskip("PIL")
    folder = _write_folders(tmp_path / "pets", photos, ("cat", "dog"), 300)
    out = run_program("image_classification_from_scratch.py", tmp_path, KERAS_PROGRAM_DATA=str(folder))
    assert "Deleted 0 images." in out
    assert re.search(r"This image is [0-9.]+% cat and [0-9.]+% dog\.", out), out[-2000:]
    assert (tmp_path / "save_at_1.keras").is_file()


def test_flowers_classification(tmp_path, photos):
    pytest.importorskip("PIL")
    folder = _write_folders(tmp_path / "flowers", photos, CLASSES[:5], 200)
    out = run_program("flowers_classification.py", tmp_path, KERAS_PROGRAM_DATA=str(folder))
    assert "This image most likely belongs to" in out


def test_data_augmentation(tmp_path, photos):
    pytest.importorskip("PIL")
    folder = _write_folders(tmp_path / "flowers", photos, CLASSES[:5], 120)
    out = run_program("data_augmentation.py", tmp_path, KERAS_PROGRAM_DATA=str(folder))
    assert _accuracy(out, r"^Accuracy ([0-9.]+)$") >= 0.0
