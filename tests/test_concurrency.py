"""One model driven from several Python threads: fit in one, and predict, evaluate, save,
get_weights (model and layer), a layer called alone and compile in others. Every call takes the model's lock, so
nothing crashes and everything read during fit is the state of a step boundary. The stress runs
in a subprocess so that a crash or a deadlock fails the test instead of killing pytest."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cnnx
from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

STRESS = textwrap.dedent("""
    import hashlib, os, sys, threading, time
    import numpy as np
    import cnnx
    from cnnx import Sequential
    from cnnx.callbacks import Callback
    from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

    out_dir = sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 32)]
    # The hidden Dense's 300k weights make each step's update and each read long enough to
    # overlap, so that an unlocked read would be caught mixing two steps.
    model = Sequential([Input((8, 8, 1)), Conv2D(64, 3, activation="relu"), MaxPooling2D(2), Flatten(),
                        Dense(512, activation="relu"), Dense(3, activation="softmax")])
    conv = model.layers[0]

    def compile_model():  # plain SGD: no slots, so re-compiling never changes the weights' path
        model.compile(optimizer=cnnx.optimizers.SGD(0.05), loss="categorical_crossentropy", metrics=["accuracy"])

    def digest(weights):
        return hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights)).hexdigest()

    compile_model()
    boundaries = {digest(model.get_weights())}  # the initial weights, then those after every step
    conv_boundaries = {digest(conv.get_weights())}
    steps = [0]

    class Record(Callback):
        def on_train_batch_end(self, batch, logs=None):
            boundaries.add(digest(model.get_weights()))
            conv_boundaries.add(digest(conv.get_weights()))
            steps[0] += 1
            time.sleep(0.002)  # ~1 s of fit in all, for the other threads to act in

    done = threading.Event()
    errors, seen, conv_seen, saved = [], [], [], []

    def worker(body):
        def run():
            try:
                while not done.is_set():
                    body()
                    time.sleep(0.002)  # leave the fit thread some of the GIL
            except BaseException as e:  # reported by the main thread
                errors.append(repr(e))
        return threading.Thread(target=run)

    def save():
        if len(saved) < 15:
            path = os.path.join(out_dir, f"model_{len(saved)}.cnnx")
            model.save(path)
            saved.append(path)

    def predict():
        p = model.predict(x[:8], verbose=0)
        assert p.shape == (8, 3) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5)

    threads = [
        worker(save),
        worker(lambda: seen.append(digest(model.get_weights()))),
        worker(lambda: conv_seen.append(digest(conv.get_weights()))),
        worker(predict),
        worker(lambda: conv(x[:5])),  # a layer run alone uses the workspaces the model's steps use
        worker(compile_model),
        worker(lambda: model.evaluate(x, y, batch_size=16, verbose=0)),
    ]
    for t in threads:
        t.start()
    try:
        model.fit(x, y, batch_size=4, epochs=50, verbose=0, shuffle=False, callbacks=[Record()])
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert steps[0] == 400, steps
    assert len(saved) >= 3 and len(seen) >= 5 and len(conv_seen) >= 5, (len(saved), len(seen), len(conv_seen))
    assert set(seen) <= boundaries, "get_weights() returned weights of no step boundary"
    assert set(conv_seen) <= conv_boundaries, "Layer.get_weights() returned weights of no step boundary"
    for path in saved:
        weights = cnnx.models.load_model(path, compile=False).get_weights()
        assert digest(weights) in boundaries, f"{path} holds weights of no step boundary"
    print("OK", len(saved), len(seen), len(conv_seen), len(set(seen)))
""")


def test_fit_with_concurrent_predict_save_get_weights_compile_evaluate(tmp_path):
    proc = subprocess.run([sys.executable, "-c", STRESS, str(tmp_path)], capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"exit status {proc.returncode}:\n{out}"
    assert out.startswith("OK"), out


def _model():
    model = Sequential([Input((6, 6, 1)), Conv2D(2, 3), MaxPooling2D(2), Flatten(), Dense(2)])
    model.compile(optimizer=cnnx.optimizers.Adam(0.01), loss="mse")
    return model


def test_snapshot_is_weights_slots_and_iterations():
    model = _model()
    x = np.random.default_rng(1).random((4, 6, 6, 1), dtype=np.float32)
    model.fit(x, np.zeros((4, 2), np.float32), epochs=3, batch_size=2, verbose=0)
    weights, slots, iterations = model._core.snapshot()
    assert iterations == 6 == model.optimizer.iterations
    flat = [w for per_layer in weights for w in per_layer]
    assert all(np.array_equal(a, b) for a, b in zip(flat, model.get_weights()))
    assert [len(per_layer) for per_layer in weights] == [2, 0, 0, 2]
    reference = model._core.get_optimizer_slots()
    assert len(slots) == 4 and all(np.array_equal(a, b) for s, r in zip(slots, reference) for a, b in zip(s, r))
    assert model._core.snapshot(False)[1:] == (None, None)
    assert Sequential([Input((3,)), Dense(1)])._core.snapshot()[1:] == (None, None)  # not compiled


def test_model_set_weights_writes_all_or_nothing():
    model = _model()
    before = model.get_weights()
    bad = [w + 1.0 for w in before]
    bad[-1] = np.zeros(3, np.float32)  # the last bias has shape (2,)
    with pytest.raises(ValueError, match=r"Dense 'dense.*': expected bias of shape \(2,\), received \(3,\)"):
        model.set_weights(bad)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    model.set_weights([w + 1.0 for w in before])
    assert all(np.array_equal(a, b + 1.0) for a, b in zip(model.get_weights(), before))


def test_layer_weights_inside_a_model_go_through_the_model():
    model = _model()
    conv = model.layers[0]
    assert conv._model_ref() is model
    w = [np.full_like(a, 0.5) for a in conv.get_weights()]
    conv.set_weights(w)
    assert np.array_equal(model.get_weights()[0], w[0])
    other = Sequential([Input((3,)), Dense(1)])
    with pytest.raises(ValueError, match="is not in this model"):
        other._core.get_layer_weights(conv._core)
