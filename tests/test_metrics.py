"""cnnx.metrics against NumPy references written from Keras 3's documented formulas, and the
metrics of compile() / fit / evaluate (computed on the step's outputs, no second forward pass)."""

import numpy as np
import pytest

import cnnx
from cnnx import metrics
from cnnx.layers import Dense, Input


def _probs(rng, n, k):
    z = rng.normal(size=(n, k))
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _weighted_mean(per_sample, w=None):
    w = np.ones(len(per_sample)) if w is None else w
    return float(np.sum(per_sample * w) / np.sum(w))


def _two_updates(metric, t, p, w=None):
    """Updates in two halves (the state must accumulate) and returns the result."""
    h = len(t) // 2
    metric.update_state(t[:h], p[:h], None if w is None else w[:h])
    metric.update_state(t[h:], p[h:], None if w is None else w[h:])
    return metric.result()


@pytest.mark.parametrize("weighted", [False, True])
def test_mean_metrics_match_reference_formulas(rng, weighted):
    n, k = 40, 5
    w = rng.uniform(0.1, 2.0, n) if weighted else None
    p = _probs(rng, n, k)
    labels = rng.integers(0, k, n)
    onehot = np.eye(k)[labels]
    reg_t, reg_p = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    pos_t, pos_p = rng.uniform(0.5, 2, (n, 3)), rng.uniform(0, 2, (n, 3))
    bin_t, bin_p = rng.integers(0, 2, (n, 1)).astype(float), rng.uniform(size=(n, 1))
    cases = [
        (metrics.CategoricalAccuracy(), onehot, p, (labels == p.argmax(1)).astype(float)),
        (metrics.SparseCategoricalAccuracy(), labels[:, None], p, (labels == p.argmax(1)).astype(float)),
        (metrics.BinaryAccuracy(), bin_t, bin_p, ((bin_p > 0.5) == bin_t)[:, 0].astype(float)),
        (metrics.BinaryAccuracy(threshold=0.7), bin_t, bin_p, ((bin_p > 0.7) == bin_t)[:, 0].astype(float)),
        (metrics.Accuracy(), labels, np.where(rng.uniform(size=n) < 0.5, labels, 0), None),
        (metrics.MeanSquaredError(), reg_t, reg_p, ((reg_p - reg_t) ** 2).mean(1)),
        (metrics.MeanAbsoluteError(), reg_t, reg_p, np.abs(reg_p - reg_t).mean(1)),
        (
            metrics.MeanAbsolutePercentageError(),
            pos_t,
            pos_p,
            100 * np.abs((pos_t - pos_p) / pos_t).mean(1),
        ),
        (
            metrics.MeanSquaredLogarithmicError(),
            pos_t,
            pos_p,
            ((np.log1p(pos_p) - np.log1p(pos_t)) ** 2).mean(1),
        ),
        (metrics.CategoricalCrossentropy(), onehot, p, -np.log(p[np.arange(n), labels])),
        (metrics.SparseCategoricalCrossentropy(), labels, p, -np.log(p[np.arange(n), labels])),
        (
            metrics.BinaryCrossentropy(),
            bin_t,
            bin_p,
            -(bin_t * np.log(bin_p) + (1 - bin_t) * np.log(1 - bin_p))[:, 0],
        ),
        (metrics.LogCoshError(), reg_t, reg_p, np.log(np.cosh(reg_p - reg_t)).mean(1)),
        (
            metrics.CosineSimilarity(),
            reg_t,
            reg_p,
            (reg_t * reg_p).sum(1) / np.linalg.norm(reg_t, axis=1) / np.linalg.norm(reg_p, axis=1),
        ),
        (
            metrics.KLDivergence(),
            onehot * 0.9 + 0.02,
            p,
            ((onehot * 0.9 + 0.02) * np.log((onehot * 0.9 + 0.02) / p)).sum(1),
        ),
        (metrics.Poisson(), pos_t, pos_p, (pos_p - pos_t * np.log(pos_p + 1e-7)).mean(1)),
    ]
    for metric, t, pr, per_sample in cases:
        if per_sample is None:
            per_sample = (np.asarray(t) == np.asarray(pr)).astype(float)
        got = _two_updates(metric, np.asarray(t, float), np.asarray(pr, float), w)
        assert got == pytest.approx(_weighted_mean(per_sample, w), rel=1e-6, abs=1e-9), metric.name


def test_root_mean_squared_error(rng):
    t, p, w = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)), rng.uniform(0.1, 1, 30)
    assert _two_updates(metrics.RootMeanSquaredError(), t, p) == pytest.approx(np.sqrt(((p - t) ** 2).mean()))
    expect = np.sqrt(np.sum(((p - t) ** 2).mean(1) * w) / w.sum())
    assert _two_updates(metrics.RootMeanSquaredError(), t, p, w) == pytest.approx(expect)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_top_k_accuracy_counts_ties_as_in(rng, k):
    n, c = 50, 8
    p = np.round(rng.uniform(size=(n, c)), 1)  # many ties
    labels = rng.integers(0, c, n)
    higher = (p > p[np.arange(n), labels][:, None]).sum(1)
    expect = float(np.mean(higher < k))
    got = _two_updates(metrics.TopKCategoricalAccuracy(k=k), np.eye(c)[labels], p)
    assert got == pytest.approx(expect)
    assert _two_updates(metrics.SparseTopKCategoricalAccuracy(k=k), labels, p) == pytest.approx(expect)
    assert metrics.top_k_categorical_accuracy(np.eye(c)[labels], p, k=k).shape == (n,)


def _confusion_ref(t, p, thr, w=None):
    w = np.ones_like(p) if w is None else np.broadcast_to(w.reshape(-1, *([1] * (p.ndim - 1))), p.shape)
    pred, pos = p > thr, t != 0
    return (np.sum(w * (pred & pos)), np.sum(w * (pred & ~pos)), np.sum(w * (~pred & ~pos)), np.sum(w * (~pred & pos)))


@pytest.mark.parametrize("weighted", [False, True])
def test_precision_recall_and_counts(rng, weighted):
    t = rng.integers(0, 2, (60, 3)).astype(float)
    p = rng.uniform(size=(60, 3))
    w = rng.uniform(0.1, 2, 60) if weighted else None
    tp, fp, tn, fn = _confusion_ref(t, p, 0.5, w)
    assert _two_updates(metrics.Precision(), t, p, w) == pytest.approx(tp / (tp + fp))
    assert _two_updates(metrics.Recall(), t, p, w) == pytest.approx(tp / (tp + fn))
    for cls, ref in ((metrics.TruePositives, tp), (metrics.FalsePositives, fp), (metrics.TrueNegatives, tn)):
        assert _two_updates(cls(), t, p, w) == pytest.approx(ref)
    assert _two_updates(metrics.FalseNegatives(), t, p, w) == pytest.approx(fn)
    # several thresholds: one value each
    got = _two_updates(metrics.Precision(thresholds=[0.8, 0.3]), t, p, w)
    for g, thr in zip(got, [0.8, 0.3]):
        tp, fp, _, _ = _confusion_ref(t, p, thr, w)
        assert g == pytest.approx(tp / (tp + fp))
    # class_id and top_k
    tp, fp, _, fn = _confusion_ref(t[:, 1], p[:, 1], 0.5, w)
    assert _two_updates(metrics.Recall(class_id=1), t, p, w) == pytest.approx(tp / (tp + fn))
    top1 = np.where(p == p.max(1, keepdims=True), p, -1e10)
    tp, fp, _, _ = _confusion_ref(t, top1, -1e9, w)  # Keras: with top_k, the top k count as positive
    assert _two_updates(metrics.Precision(top_k=1), t, p, w) == pytest.approx(tp / (tp + fp))


def _auc_ref(t, p, curve, method, num_thresholds=200, w=None):
    """Keras' AUC written out with loops from its documentation."""
    eps = 1e-7
    thr = [-eps] + [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)] + [1 + eps]
    t, p = t.reshape(-1), p.reshape(-1)
    w = np.ones_like(p) if w is None else w.reshape(-1)
    tp = np.array([np.sum(w * ((p > th) & (t == 1))) for th in thr])
    fp = np.array([np.sum(w * ((p > th) & (t == 0))) for th in thr])
    tn = np.array([np.sum(w * ((p <= th) & (t == 0))) for th in thr])
    fn = np.array([np.sum(w * ((p <= th) & (t == 1))) for th in thr])
    total = 0.0
    for i in range(num_thresholds - 1):
        if curve == "PR" and method == "interpolation":
            dtp = tp[i] - tp[i + 1]
            pa, pb = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
            dp = pa - pb
            slope = dtp / dp if dp > 0 else 0.0
            intercept = tp[i + 1] - slope * pb
            ratio = pa / pb if (pa > 0 and pb > 0) else 1.0
            denom = tp[i + 1] + fn[i + 1]
            total += slope * (dtp + intercept * np.log(ratio)) / denom if denom > 0 else 0.0
            continue
        rec = [tp[j] / (tp[j] + fn[j]) if tp[j] + fn[j] else 0.0 for j in (i, i + 1)]
        if curve == "ROC":
            x = [fp[j] / (fp[j] + tn[j]) if fp[j] + tn[j] else 0.0 for j in (i, i + 1)]
            y = rec
        else:
            x = rec
            y = [tp[j] / (tp[j] + fp[j]) if tp[j] + fp[j] else 0.0 for j in (i, i + 1)]
        h = {"interpolation": (y[0] + y[1]) / 2, "minoring": min(y), "majoring": max(y)}[method]
        total += (x[0] - x[1]) * h
    return total


@pytest.mark.parametrize("curve", ["ROC", "PR"])
@pytest.mark.parametrize("method", ["interpolation", "minoring", "majoring"])
def test_auc_matches_keras_formula(rng, curve, method):
    t = rng.integers(0, 2, (80, 2)).astype(float)
    p = np.clip(t * 0.3 + rng.uniform(size=(80, 2)) * 0.7, 0, 1)
    m = metrics.AUC(curve=curve, summation_method=method)
    assert _two_updates(m, t, p) == pytest.approx(_auc_ref(t, p, curve, method), rel=1e-9, abs=1e-12)
    m = metrics.AUC(curve=curve, summation_method=method, num_thresholds=17)
    w = rng.uniform(0.1, 2, 80)
    ww = np.repeat(w[:, None], 2, 1)
    assert _two_updates(m, t, p, w) == pytest.approx(_auc_ref(t, p, curve, method, 17, ww), rel=1e-9, abs=1e-12)


def test_roc_auc_is_close_to_the_exact_rank_statistic(rng):
    t = rng.integers(0, 2, 500).astype(float)
    p = np.clip(0.35 * t + 0.65 * rng.uniform(size=500), 0, 1)
    pos, neg = p[t == 1], p[t == 0]
    exact = np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :])
    assert metrics.AUC(num_thresholds=1000)(t, p) == pytest.approx(exact, abs=2e-3)


def test_auc_multi_label_and_logits(rng):
    t = rng.integers(0, 2, (50, 3)).astype(float)
    z = rng.normal(size=(50, 3))
    p = 1 / (1 + np.exp(-z))
    per = [_auc_ref(t[:, j], p[:, j], "ROC", "interpolation") for j in range(3)]
    assert metrics.AUC(multi_label=True)(t, p) == pytest.approx(np.mean(per))
    lw = np.array([1.0, 2.0, 0.5])
    assert metrics.AUC(multi_label=True, label_weights=lw)(t, p) == pytest.approx(np.sum(per * lw) / lw.sum())
    assert metrics.AUC(from_logits=True)(t, z) == pytest.approx(metrics.AUC()(t, p))


def test_mean_sum_reset_and_config():
    m = metrics.Mean()
    m.update_state([1.0, 2.0, 3.0], sample_weight=[1.0, 0.0, 1.0])
    assert m.result() == pytest.approx(2.0)
    m.reset_state()
    assert m.result() == 0.0
    s = metrics.Sum()
    s.update_state([1.0, 2.0], sample_weight=[2.0, 1.0])
    assert s.result() == pytest.approx(4.0)
    for m in (
        metrics.Precision(thresholds=[0.2, 0.4]),
        metrics.AUC(curve="PR", num_thresholds=50),
        metrics.TopKCategoricalAccuracy(k=3),
        metrics.BinaryAccuracy(threshold=0.3),
    ):
        clone = type(m).from_config(m.get_config())
        assert clone.get_config() == m.get_config()
    assert metrics.AUC().name == "auc" and metrics.Precision().name == "precision"
    assert metrics.MeanSquaredError().name == "mean_squared_error"


def test_string_names_resolve_like_keras():
    for name, cls in [("precision", metrics.Precision), ("recall", metrics.Recall), ("auc", metrics.AUC)]:
        assert isinstance(metrics.get(name), cls)
    assert metrics.get("mae") is metrics.mean_absolute_error
    assert metrics.get("top_k_categorical_accuracy") is metrics.top_k_categorical_accuracy
    assert metrics.resolve("mae").name == "mae"  # Keras 3: the log key is the string as given
    with pytest.raises(ValueError, match="Could not interpret metric identifier"):
        metrics.get("f1_scorez")


# -- in compile / fit / evaluate -----------------------------------------------------------------------
def _model(rng, units=3, activation="softmax"):
    model = cnnx.Sequential([Input((6,)), Dense(8, activation="tanh"), Dense(units, activation=activation)])
    return model


def _data(rng, n=90, k=3):
    x = rng.normal(size=(n, 6)).astype(np.float32)
    labels = rng.integers(0, k, n)
    return x, np.eye(k, dtype=np.float32)[labels], labels


def test_evaluate_metrics_equal_the_classes_on_predict_outputs(rng):
    x, y, labels = _data(rng)
    model = _model(rng)
    model.compile(
        "adam",
        "categorical_crossentropy",
        metrics=["accuracy", "mae", "precision", "auc", "top_k_categorical_accuracy", metrics.Recall(thresholds=0.3)],
    )
    logs = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert list(logs) == ["loss", "accuracy", "mae", "precision", "auc", "top_k_categorical_accuracy", "recall"]
    p = model.predict(x, verbose=0)
    assert logs["accuracy"] == pytest.approx(metrics.CategoricalAccuracy()(y, p))
    assert logs["mae"] == pytest.approx(metrics.MeanAbsoluteError()(y, p), rel=1e-6)
    assert logs["precision"] == pytest.approx(metrics.Precision()(y, p))
    assert logs["auc"] == pytest.approx(metrics.AUC()(y, p))
    assert logs["top_k_categorical_accuracy"] == pytest.approx(metrics.TopKCategoricalAccuracy()(y, p))
    assert logs["recall"] == pytest.approx(metrics.Recall(thresholds=0.3)(y, p))
    assert model.metrics_names == ["loss", *list(logs)[1:]]
    assert [m.name for m in model.metrics] == model.metrics_names
    assert model.metrics[3].result() == pytest.approx(logs["precision"])  # the objects hold the pass


def test_core_accuracy_equals_the_metric_classes(rng):
    x, y, labels = _data(rng, 70, 4)
    for loss, target, cls in [
        ("categorical_crossentropy", y, metrics.CategoricalAccuracy),
        ("sparse_categorical_crossentropy", labels, metrics.SparseCategoricalAccuracy),
    ]:
        model = _model(rng, 4)
        model.compile("sgd", loss, metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
        logs = model.evaluate(x, target, batch_size=32, verbose=0, return_dict=True)
        p = model.predict(x, verbose=0)
        assert logs["accuracy"] == pytest.approx(cls()(target, p))
        assert logs["sparse_top_k_categorical_accuracy"] == pytest.approx(
            metrics.SparseTopKCategoricalAccuracy()(labels, p)
        )
    model = _model(rng, 1, "sigmoid")
    yb = (labels % 2).astype(np.float32)[:, None]
    model.compile("sgd", "binary_crossentropy", metrics=["accuracy", metrics.BinaryAccuracy(name="ba")])
    logs = model.evaluate(x, yb, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(logs["ba"])


def test_metrics_use_the_step_outputs_without_a_second_forward_pass(rng):
    x, y, _ = _data(rng, 64)
    model = _model(rng)
    model.compile("adam", "categorical_crossentropy", metrics=["mse", "auc"])
    model.build()
    model._core.set_profiling(True)
    model.evaluate(x, y, batch_size=16, verbose=0)
    calls = {name: fwd for name, _, _, fwd, _ in model._core.profile()}
    assert [calls[layer.name] for layer in model.layers] == [4, 4], calls  # 4 batches, one forward each


def test_fit_logs_metrics_and_validation_prefix(rng):
    x, y, _ = _data(rng)
    model = _model(rng)
    seen = []

    class Spy(cnnx.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(dict(logs))

    model.compile("adam", "categorical_crossentropy", metrics=["mae", "precision"])
    history = model.fit(x, y, batch_size=30, epochs=2, validation_split=0.2, verbose=0, callbacks=[Spy()])
    assert set(history.history) == {"loss", "mae", "precision", "val_loss", "val_mae", "val_precision"}
    assert seen and set(seen[0]) == {"loss", "mae", "precision"}
    # validation metrics are those of evaluate on the held-out part
    xv, yv = x[72:], y[72:]
    logs = model.evaluate(xv, yv, verbose=0, return_dict=True)
    assert history.history["val_mae"][-1] == pytest.approx(logs["mae"])


def test_metric_functions_and_weighted_metrics(rng):
    x, y, _ = _data(rng, 40)
    w = rng.uniform(0.1, 2.0, 40).astype(np.float32)

    def max_error(y_true, y_pred):
        return np.max(np.abs(y_true - y_pred), axis=-1)

    model = _model(rng)
    model.compile(
        "sgd", "categorical_crossentropy", metrics=["accuracy", max_error, "mae"], weighted_metrics=["accuracy", "mae"]
    )
    logs = model.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    assert logs["max_error"] == pytest.approx(np.mean(max_error(y, p)))
    assert logs["mae"] == pytest.approx(metrics.MeanAbsoluteError()(y, p), rel=1e-6)  # metrics= ignore weights
    assert logs["weighted_mae"] == pytest.approx(metrics.MeanAbsoluteError()(y, p, sample_weight=w), rel=1e-6)
    acc = (y.argmax(1) == p.argmax(1)).astype(float)
    assert logs["weighted_accuracy"] == pytest.approx(np.sum(acc * w) / np.sum(w), rel=1e-6)
    assert logs["accuracy"] == pytest.approx(acc.mean())


def test_compile_accepts_keras_arguments_that_change_nothing(rng):
    x, y, _ = _data(rng, 32)
    results = []
    for kwargs in [{}, {"jit_compile": True, "steps_per_execution": 1, "run_eagerly": False, "auto_scale_loss": True}]:
        model = _model(rng)
        model.set_weights([np.full_like(w, 0.1) for w in model.get_weights()])
        model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"], loss_weights=[1.0], **kwargs)
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    model = _model(rng)
    model.compile("sgd", loss=["mse"], metrics={"out": ["mae"]})
    with pytest.raises(ValueError, match="loss_weights"):
        model.compile("sgd", "mse", loss_weights=[2.0])
    with pytest.raises(TypeError, match="metrics="):
        model.compile("sgd", "mse", ["mae"])  # Keras 2's positional metrics
    with pytest.raises(ValueError, match="reduction"):
        model.compile("sgd", cnnx.losses.MeanSquaredError(reduction="sum"))
    with pytest.raises(TypeError, match="metrics to be a list"):
        model.compile("sgd", "mse", metrics="mae")


def test_saving_keeps_metric_objects(rng, tmp_path):
    x, y, _ = _data(rng, 32)
    model = _model(rng)
    model.compile("adam", "categorical_crossentropy", metrics=["mae", metrics.Precision(thresholds=0.3), "accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.cnnx"
    model.save(path)
    loaded = cnnx.models.load_model(path)
    assert loaded.metrics_names == model.metrics_names
    a = model.evaluate(x, y, verbose=0, return_dict=True)
    b = loaded.evaluate(x, y, verbose=0, return_dict=True)
    assert a == pytest.approx(b)
    assert loaded.metrics[2].get_config()["thresholds"] == 0.3


class CountAbove(metrics.Metric):
    """A user's stateful metric: the fraction of outputs above 0.5."""

    def __init__(self, name="count_above", dtype=None, level=0.5):
        self.level = level
        super().__init__(name=name, dtype=dtype)

    def reset_state(self):
        self.hits = self.seen = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.hits += float(np.sum(np.asarray(y_pred) > self.level))
        self.seen += float(np.size(y_pred))

    def result(self):
        return self.hits / self.seen if self.seen else 0.0

    def get_config(self):
        return {**super().get_config(), "level": self.level}


def test_user_metric_subclass_and_custom_objects(rng, tmp_path):
    x, y, _ = _data(rng, 48)

    def max_error(y_true, y_pred):
        return np.max(np.abs(y_true - y_pred), axis=-1)

    model = _model(rng)
    model.compile("adam", "categorical_crossentropy", metrics=[CountAbove(level=0.4), max_error])
    logs = model.evaluate(x, y, batch_size=10, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    assert logs["count_above"] == pytest.approx(np.mean(p > 0.4))
    path = tmp_path / "custom_metrics.cnnx"
    model.save(path)
    with pytest.raises(ValueError, match="custom_objects"):
        cnnx.models.load_model(path)
    loaded = cnnx.models.load_model(path, custom_objects={"CountAbove": CountAbove, "max_error": max_error})
    assert loaded.evaluate(x, y, batch_size=10, verbose=0, return_dict=True) == pytest.approx(logs)
    assert loaded.metrics[1].level == 0.4


def test_user_metric_with_add_variable_as_in_the_keras_guide():
    """keras-io's CategoricalTruePositives: state made with add_variable after super().__init__,
    assign_add in update_state, the variable itself returned by result, reset by assign."""

    class CategoricalTruePositives(cnnx.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = np.argmax(y_pred, axis=1)  # flat: the guide's (n, 1) broadcasts against (n,) labels
            values = (np.asarray(y_true).reshape(-1).astype("int32") == y_pred.astype("int32")).astype("float32")
            if sample_weight is not None:
                values = values * np.asarray(sample_weight, "float32").reshape(-1)
            self.true_positives.assign_add(np.sum(values))

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    m = CategoricalTruePositives()
    m.update_state(np.array([[0], [2], [1]]), np.array([[0.9, 0.1, 0], [0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]))
    assert float(m.result()) == 2.0
    m.reset_state()
    assert float(m.result()) == 0.0
    model = cnnx.Sequential([cnnx.Input((4,)), cnnx.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=[CategoricalTruePositives()])
    x = np.random.default_rng(0).random((10, 4)).astype("float32")
    y = np.arange(10) % 3
    logs = model.evaluate(x, y, batch_size=4, return_dict=True, verbose=0)
    assert logs["categorical_true_positives"] == float(np.sum(np.argmax(model.predict(x, verbose=0), 1) == y))


def test_metric_variable_defaults_reset_with_reset_state():
    class Count(cnnx.metrics.Metric):
        def __init__(self):
            super().__init__(name="count")
            self.n = self.add_weight(name="n", shape=(2,), initializer="ones")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.n.assign_add([len(y_true), 1])

        def result(self):
            return self.n.numpy()[0]

    c = Count()
    c.update_state(np.zeros(5), np.zeros(5))
    assert c.result() == 6.0 and c.variables[0].shape == (2,)
    c.reset_state()  # the base class puts every variable back to its initializer
    np.testing.assert_array_equal(c.variables[0].numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match="initializer"):
        c.add_variable(initializer="glorot")
