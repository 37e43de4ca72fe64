"""cnnx.metrics and cnnx.losses against real Keras 3 on random data (skipped without Keras).
Kept small: importing TensorFlow takes seconds."""

import re

import numpy as np
import pytest
from conftest import skip_interop_if_disabled

import cnnx

skip_interop_if_disabled()
keras = pytest.importorskip("keras")


def _data(rng):
    n, k = 64, 5
    z = rng.normal(size=(n, k))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    labels = rng.integers(0, k, n)
    onehot = np.eye(k)[labels]
    multi = rng.integers(0, 2, (n, k)).astype(float)
    return {
        "p": p.astype(np.float32),
        "labels": labels.astype(np.float32),
        "onehot": onehot.astype(np.float32),
        "multi": multi.astype(np.float32),
        "reg_t": rng.uniform(0.5, 2, (n, 3)).astype(np.float32),
        "reg_p": rng.uniform(0.1, 2, (n, 3)).astype(np.float32),
        "w": rng.uniform(0.1, 2.0, n).astype(np.float32),
    }


METRICS = [
    # (class name, kwargs, y_true key, y_pred key)
    ("CategoricalAccuracy", {}, "onehot", "p"),
    ("SparseCategoricalAccuracy", {}, "labels", "p"),
    ("BinaryAccuracy", {"threshold": 0.3}, "multi", "p"),
    ("TopKCategoricalAccuracy", {"k": 2}, "onehot", "p"),
    ("SparseTopKCategoricalAccuracy", {"k": 3}, "labels", "p"),
    ("MeanSquaredError", {}, "reg_t", "reg_p"),
    ("MeanAbsoluteError", {}, "reg_t", "reg_p"),
    ("RootMeanSquaredError", {}, "reg_t", "reg_p"),
    ("MeanAbsolutePercentageError", {}, "reg_t", "reg_p"),
    ("MeanSquaredLogarithmicError", {}, "reg_t", "reg_p"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "onehot", "p"),
    ("SparseCategoricalCrossentropy", {}, "labels", "p"),
    ("BinaryCrossentropy", {}, "multi", "p"),
    ("Precision", {}, "multi", "p"),
    ("Recall", {"thresholds": 0.3}, "multi", "p"),
    ("Precision", {"top_k": 2}, "multi", "p"),
    ("Recall", {"class_id": 1}, "multi", "p"),
    ("AUC", {}, "multi", "p"),
    ("AUC", {"curve": "PR"}, "multi", "p"),
    ("AUC", {"multi_label": True, "num_thresholds": 50}, "multi", "p"),
]


@pytest.mark.parametrize("weighted", [False, True])
def test_metrics_match_keras(rng, weighted):
    d = _data(rng)
    w = d["w"] if weighted else None
    for name, kwargs, t, p in METRICS:
        ours = getattr(cnnx.metrics, name)(**kwargs)
        ref = getattr(keras.metrics, name)(**kwargs)
        for half in (slice(0, 32), slice(32, 64)):
            sw = None if w is None else w[half]
            ours.update_state(d[t][half], d[p][half], sample_weight=sw)
            ref.update_state(d[t][half], d[p][half], sample_weight=sw)
        assert ours.result() == pytest.approx(float(ref.result()), rel=2e-5, abs=1e-6), (name, kwargs)


def test_loss_functions_match_keras(rng):
    d = _data(rng)
    pairs = [
        ("categorical_crossentropy", "onehot", "p"),
        ("sparse_categorical_crossentropy", "labels", "p"),
        ("binary_crossentropy", "multi", "p"),
        ("mean_squared_error", "reg_t", "reg_p"),
        ("mean_absolute_error", "reg_t", "reg_p"),
        ("mean_absolute_percentage_error", "reg_t", "reg_p"),
        ("mean_squared_logarithmic_error", "reg_t", "reg_p"),
        ("huber", "reg_t", "reg_p"),
        ("log_cosh", "reg_t", "reg_p"),
        ("kl_divergence", "onehot", "p"),
        ("poisson", "reg_t", "reg_p"),
        ("hinge", "multi", "p"),
        ("squared_hinge", "multi", "p"),
        ("categorical_hinge", "onehot", "p"),
        ("cosine_similarity", "reg_t", "reg_p"),
    ]
    for name, t, p in pairs:
        want = np.asarray(getattr(keras.losses, name)(d[t], d[p]))
        np.testing.assert_allclose(getattr(cnnx.losses, name)(d[t], d[p]), want, rtol=2e-5, atol=1e-6, err_msg=name)
    for cls in ("Huber", "LogCosh", "KLDivergence", "CategoricalHinge", "CosineSimilarity"):
        ours, ref = getattr(cnnx.losses, cls)(), getattr(keras.losses, cls)()
        assert ours.name == ref.name
        t, p = ("onehot", "p") if cls in ("KLDivergence", "CategoricalHinge") else ("reg_t", "reg_p")
        assert ours(d[t], d[p], sample_weight=d["w"]) == pytest.approx(
            float(ref(d[t], d[p], sample_weight=d["w"])), rel=2e-5
        )


def test_names_and_configs_match_keras():
    for name in ("Precision", "Recall", "AUC", "MeanSquaredError", "RootMeanSquaredError", "TopKCategoricalAccuracy"):
        ours, ref = getattr(cnnx.metrics, name)(), getattr(keras.metrics, name)()
        assert ours.name == re.sub(r"_\d+$", "", ref.name), name  # Keras numbers later instances
        ref_config = ref.get_config()
        assert set(ours.get_config()) <= set(ref_config), name
