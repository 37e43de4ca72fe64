"""A Sequential made only of weightless image preprocessing layers, built for one image size,
used (nested, on a KerasTensor, built) for another: Keras' layers take any size, so cnnx rebuilds
such a model in place, unless another built model still runs it at the old size."""

import numpy as np
import pytest

import cnnx
from cnnx import layers


def _images(rng, n, size):
    return (rng.random((n, size, size, 3)) * 255).astype(np.float32)


def test_tutorial_flow_nested_augmentation_trains():
    """The TF data-augmentation tutorial: an augmentation model called on 64x64 images, then
    nested after a resize to 16x16 in a model that is trained."""
    rng = np.random.default_rng(0)
    resize_and_rescale = cnnx.Sequential([layers.Resizing(16, 16), layers.Rescaling(1.0 / 255)])
    augmentation = cnnx.Sequential([layers.RandomFlip("horizontal_and_vertical"), layers.RandomRotation(0.2, seed=3)])
    assert augmentation(_images(rng, 1, 64)).shape == (1, 64, 64, 3)
    names = [layer.name for layer in augmentation.layers]
    configs = [layer.get_config() for layer in augmentation.layers]
    model = cnnx.Sequential(
        [
            resize_and_rescale,
            augmentation,
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3),
        ]
    )
    x, y = _images(rng, 8, 40), rng.integers(0, 3, 8)
    resize_and_rescale(x)  # built for 40x40
    model.compile(optimizer="adam", loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert augmentation.input_shape == (None, 16, 16, 3)
    assert [layer.name for layer in augmentation.layers] == names
    assert [layer.get_config() for layer in augmentation.layers] == configs
    assert model.predict(x, verbose=0).shape == (8, 3)
    # Eager calls at the new size run the model itself, at other sizes still work.
    small = _images(rng, 2, 16)
    np.testing.assert_array_equal(augmentation(small), small)
    assert augmentation(_images(rng, 2, 64), training=True).shape == (2, 64, 64, 3)


def test_rebuilt_deterministic_model_matches_a_fresh_one():
    rng = np.random.default_rng(1)
    pipeline = cnnx.Sequential([layers.Resizing(12, 10, interpolation="nearest"), layers.Rescaling(0.5, offset=1.0)])
    pipeline(_images(rng, 1, 30))
    inputs = cnnx.Input((20, 20, 3))
    out = layers.Conv2D(2, 1)(pipeline(inputs))  # on a KerasTensor of another size
    model = cnnx.Model(inputs, out)
    assert pipeline.input_shape == (None, 20, 20, 3)
    fresh = cnnx.Sequential([layers.Resizing(12, 10, interpolation="nearest"), layers.Rescaling(0.5, offset=1.0)])
    x = _images(rng, 3, 20)
    np.testing.assert_array_equal(pipeline(x), fresh(x))
    assert model.predict(x, verbose=0).shape == (3, 12, 10, 2)
    with pytest.raises(ValueError, match=r"\(None, 20, 20, 3\) and cannot be rebuilt for \(None, 24, 24, 3\)"):
        pipeline.build((None, 24, 24, 3))  # `model` still runs it at 20x20


def test_rebuild_refused_while_another_built_model_needs_the_old_size():
    rng = np.random.default_rng(2)
    flip = cnnx.Sequential([layers.RandomFlip("horizontal")], name="flip_model")
    outer = cnnx.Sequential([cnnx.Input((32, 32, 3)), flip, layers.Flatten()], name="outer_model")
    outer.build()
    with pytest.raises(ValueError, match=r"flip_model.*\(None, 32, 32, 3\).*\(None, 16, 16, 3\).*outer_model"):
        cnnx.Sequential([cnnx.Input((16, 16, 3)), flip])
    assert flip.input_shape == (None, 32, 32, 3)
    assert outer.predict(_images(rng, 2, 32), verbose=0).shape == (2, 32 * 32 * 3)
    del outer
    import gc

    gc.collect()  # once the old model is gone, the preprocessing model can move to the new size
    model = cnnx.Sequential([cnnx.Input((16, 16, 3)), flip])
    assert model.predict(_images(rng, 2, 16), verbose=0).shape == (2, 16, 16, 3)


def test_weighted_or_other_layers_keep_the_strict_error():
    rng = np.random.default_rng(3)
    conv = cnnx.Sequential([layers.Rescaling(0.5), layers.Conv2D(2, 3)], name="convs")
    conv(_images(rng, 1, 16))
    with pytest.raises(ValueError, match=r'layer "convs" is incompatible.*expected shape=\(None, 16, 16, 3\)'):
        cnnx.Sequential([cnnx.Input((8, 8, 3)), conv])
    with pytest.raises(ValueError, match="expected input shape"):
        conv.build((None, 8, 8, 3))


def test_popped_from_the_old_model_it_moves_to_the_new_size():
    flip = cnnx.Sequential([layers.RandomFlip()])
    outer = cnnx.Sequential([cnnx.Input((32, 32, 3)), flip, layers.Flatten()])
    outer.build()
    outer.pop()
    outer.pop()
    model = cnnx.Sequential([cnnx.Input((16, 16, 3)), flip])
    x = np.random.default_rng(4).random((2, 16, 16, 3), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
