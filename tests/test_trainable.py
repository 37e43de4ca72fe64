"""layer.trainable / model.trainable with Keras 3 semantics: frozen weights stay bit-identical
through fit, a frozen BatchNormalization keeps its moving statistics, the summary counts
frozen weights as non-trainable, and a change takes effect at the next compile()."""

import numpy as np
import pytest

import cnnx
from cnnx import layers as L


def data(rng, n=32):
    x = rng.normal(size=(n, 6, 6, 2)).astype(np.float32)
    return x, (x.mean(axis=(1, 2, 3)) > 0).astype(np.int64)


def conv_model(frozen_conv=False, frozen_bn=False):
    return cnnx.Sequential(
        [
            cnnx.Input((6, 6, 2)),
            L.Conv2D(4, 3, activation="relu", trainable=not frozen_conv, name="conv"),
            L.BatchNormalization(trainable=not frozen_bn, name="bn"),
            L.Flatten(),
            L.Dense(2, activation="softmax", name="head"),
        ]
    )


def fit(model, rng, epochs=2):
    x, y = data(rng)
    model.compile(cnnx.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return model.fit(x, y, batch_size=8, epochs=epochs, verbose=0)


def test_trainable_argument_and_config():
    for cls, args in [(L.Dense, (3,)), (L.Conv2D, (2, 3)), (L.BatchNormalization, ()), (L.Dropout, (0.5,))]:
        layer = cls(*args, trainable=False)
        assert layer.trainable is False
        config = layer.get_config()
        assert config["trainable"] is False
        assert cls.from_config(config).trainable is False
    with pytest.raises(TypeError, match="expected trainable to be True or False, received trainable='no'"):
        L.Dense(3, trainable="no")
    layer = L.Dense(3)
    with pytest.raises(TypeError, match="trainable"):
        layer.trainable = 1
    layer.trainable = False
    assert layer._core.trainable is False


def test_frozen_layer_weights_are_bit_identical_after_fit(rng):
    cnnx.utils.set_random_seed(1)
    model = conv_model(frozen_conv=True)
    conv, bn, head = model.get_layer("conv"), model.get_layer("bn"), model.get_layer("head")
    before = [conv.get_weights(), bn.get_weights(), head.get_weights()]
    history = fit(model, rng)
    assert np.isfinite(history.history["loss"]).all()
    for w0, w1 in zip(before[0], conv.get_weights()):
        assert np.array_equal(w0, w1)
    assert not np.array_equal(before[1][0], bn.get_weights()[0])  # gamma trains
    assert not np.array_equal(before[2][0], head.get_weights()[0])


def test_frozen_batch_normalization_keeps_its_moving_statistics(rng):
    cnnx.utils.set_random_seed(2)
    model = conv_model(frozen_bn=True)
    bn = model.get_layer("bn")
    before = bn.get_weights()
    fit(model, rng)
    for w0, w1 in zip(before, bn.get_weights()):  # gamma, beta, moving mean and variance
        assert np.array_equal(w0, w1)
    # a trainable one moves its statistics during the same fit
    cnnx.utils.set_random_seed(2)
    model = conv_model()
    before = model.get_layer("bn").get_weights()
    fit(model, rng)
    assert not np.array_equal(before[2], model.get_layer("bn").get_weights()[2])


def test_summary_totals_and_weight_lists(capsys):
    model = conv_model(frozen_conv=True)
    conv_params = 3 * 3 * 2 * 4 + 4
    bn_params, head_params = 4 * 4, 4 * 4 * 4 * 2 + 2
    total = conv_params + bn_params + head_params
    model.summary()
    out = capsys.readouterr().out
    frozen = conv_params + 8  # the conv layer, and BatchNormalization's moving mean and variance
    assert f"Total params: {total:,}" in out
    assert f"Trainable params: {total - frozen:,}" in out
    assert f"Non-trainable params: {frozen:,}" in out
    assert sum(w.size for w in model.trainable_weights) == total - frozen
    assert sum(w.size for w in model.non_trainable_weights) == frozen
    assert [w.shape for w in model.get_layer("conv").non_trainable_weights] == [(3, 3, 2, 4), (4,)]
    assert model.get_layer("conv").trainable_weights == []
    model.trainable = False
    assert all(not layer.trainable for layer in model.layers)
    model.summary()
    out = capsys.readouterr().out
    assert "Trainable params: 0 (0.00 B)" in out and f"Non-trainable params: {total:,}" in out
    assert model.trainable_weights == [] and len(model.non_trainable_weights) == 8


def test_changing_trainable_takes_effect_at_the_next_compile(rng):
    cnnx.utils.set_random_seed(3)
    model = conv_model()
    conv = model.get_layer("conv")
    conv.trainable = False
    fit(model, rng, epochs=1)
    frozen = conv.get_weights()
    fit(model, rng, epochs=1)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, conv.get_weights()))
    conv.trainable = True
    fit(model, rng, epochs=1)  # compile() again, then fit
    assert not np.array_equal(frozen[0], conv.get_weights()[0])


def test_frozen_base_model_transfer_learning(rng):
    """Keras' transfer-learning recipe: freeze a base model, train a new head on top."""
    cnnx.utils.set_random_seed(4)
    base = cnnx.Sequential([cnnx.Input((6, 6, 2)), L.Conv2D(4, 3, activation="relu"), L.BatchNormalization()])
    base.trainable = False
    assert all(not layer.trainable for layer in base.layers)
    inputs = cnnx.Input((6, 6, 2))
    x = L.GlobalAveragePooling2D()(base(inputs))
    model = cnnx.Model(inputs, L.Dense(2, activation="softmax")(x))
    before = base.get_weights()
    fit(model, rng)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights()))
    assert sum(w.size for w in model.trainable_weights) == 4 * 2 + 2
    # fine-tuning: unfreeze and compile again
    base.trainable = True
    fit(model, rng)
    assert not np.array_equal(before[0], base.get_weights()[0])


def test_a_layer_trains_only_if_every_enclosing_model_does(rng):
    """Keras 3: a model that is not trainable has no trainable weights, whatever its layers say."""
    cnnx.utils.set_random_seed(5)
    inner = cnnx.Sequential([cnnx.Input((6, 6, 2)), L.Conv2D(4, 3, name="inner_conv")])
    inner.trainable = False
    inner.layers[0].trainable = True
    model = cnnx.Sequential([cnnx.Input((6, 6, 2)), inner, L.Flatten(), L.Dense(2, activation="softmax")])
    assert model.get_layer(index=0).trainable is False
    before = inner.get_weights()
    fit(model, rng)
    assert all(np.array_equal(a, b) for a, b in zip(before, inner.get_weights()))
    assert all(w.shape != (3, 3, 2, 4) for w in model.trainable_weights)


def test_model_trainable_argument_and_config():
    inputs = cnnx.Input((3,))
    model = cnnx.Model(inputs, L.Dense(2)(inputs), trainable=False)
    assert model.trainable is False and model.layers[1].trainable is False
    config = model.get_config()
    assert config["trainable"] is False
    assert cnnx.Model.from_config(config).trainable is False
    # Keras 3: Sequential(trainable=False) leaves its layers' flags alone, yet nothing trains
    seq = cnnx.Sequential([cnnx.Input((3,)), L.Dense(2)], trainable=False)
    assert seq.trainable is False and seq.layers[0].trainable is True
    assert seq.trainable_weights == [] and len(seq.non_trainable_weights) == 2
    rebuilt = cnnx.Sequential.from_config(seq.get_config())
    assert rebuilt.trainable is False and rebuilt.trainable_weights == []
