"""The new layers inside Sequential: the sports-exercise model in Keras' words, training with
Dropout + BatchNormalization, inference determinism, and a get_config/from_config round trip."""

import numpy as np

import cnnx
from cnnx import Sequential
from cnnx.layers import (
    ELU,
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    LeakyReLU,
    MaxPooling2D,
    ReLU,
    Rescaling,
    Reshape,
    Softmax,
)


def sports_model():
    return Sequential(
        [
            Conv2D(32, (3, 3), activation="linear", padding="same", input_shape=(21, 28, 3)),
            LeakyReLU(negative_slope=0.1),
            MaxPooling2D((2, 2), padding="same"),
            Dropout(0.5),
            Flatten(),
            Dense(32, activation="linear"),
            LeakyReLU(negative_slope=0.1),
            Dropout(0.5),
            Dense(10, activation="softmax"),
        ]
    )


def test_sports_model_summary(capsys):
    model = sports_model()
    assert model.count_params() == 158_954  # 896 + 157,728 + 330, as Keras reports
    assert model.layers[2].output_shape == (None, 11, 14, 32)
    assert [layer.count_params() for layer in model.layers] == [896, 0, 0, 0, 0, 157_728, 0, 0, 330]
    model.summary()
    out = capsys.readouterr().out
    assert "(LeakyReLU)" in out and "(Dropout)" in out
    assert "(None, 11, 14, 32)" in out and "(None, 4928)" in out
    assert "Total params: 158,954" in out and "Non-trainable params: 0" in out


def test_sports_model_trains_and_predicts_deterministically(rng):
    model = sports_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.normal(size=(32, 21, 28, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=32)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))  # no dropout


def test_dropout_and_batch_normalization_model_learns(rng):
    cnnx.utils.set_random_seed(0)  # weights, dropout masks and shuffling
    n = 256
    y = rng.integers(0, 2, size=n)
    x = (rng.normal(size=(n, 6, 6, 2)) * 3 + 2).astype(np.float32)  # off-centre: BN's job
    x[..., 0] += 2.0 * y[:, None, None]
    model = Sequential(
        [
            Conv2D(8, 3, padding="same", input_shape=(6, 6, 2)),
            BatchNormalization(momentum=0.9),  # a short run: let the moving statistics catch up
            ReLU(),
            MaxPooling2D(2),
            Dropout(0.2, seed=1),
            Flatten(),
            Dense(16),
            BatchNormalization(momentum=0.9),
            Activation("relu"),
            Dropout(0.3, seed=2),
            Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=12, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    # The moving statistics followed the data (moving_mean started at 0).
    assert np.abs(model.layers[1].get_weights()[2]).max() > 0.1
    loss, acc = model.evaluate(x, y, verbose=0)
    assert acc > 0.8, acc


def test_config_round_trip_with_new_layers(rng):
    model = Sequential(
        [
            Rescaling(1 / 255, offset=-0.5, input_shape=(8, 8, 3)),
            Conv2D(4, 3, padding="same"),
            BatchNormalization(momentum=0.9),
            ELU(alpha=0.5),
            AveragePooling2D(2, padding="same"),
            Dropout(0.25, noise_shape=(None, 1, 1, 4), seed=3),
            Reshape((4, 4, 4)),
            GlobalMaxPooling2D(keepdims=True),
            Reshape((-1,)),
            Dense(6),
            LeakyReLU(),
            Activation("tanh"),
            ReLU(max_value=6.0),
            Dense(3),
            Softmax(),
        ]
    )
    GlobalAveragePooling2D()  # constructible alongside
    clone = Sequential.from_config(model.get_config())
    assert [type(layer).__name__ for layer in clone.layers] == [type(layer).__name__ for layer in model.layers]
    assert [layer.get_config() for layer in clone.layers] == [layer.get_config() for layer in model.layers]
    clone.set_weights(model.get_weights())
    x = rng.uniform(0, 255, size=(3, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_sports_model_with_the_exercises_compile_arguments(rng):
    """As the exercise compiles it: Adagrad(learning_rate=1e-3) and categorical_crossentropy on
    one-hot labels; classes here are images whose mean colour encodes the label."""
    cnnx.utils.set_random_seed(2)
    labels = rng.integers(0, 10, 200)
    x = rng.normal(scale=0.3, size=(200, 21, 28, 3)).astype(np.float32)
    x[..., 0] += (labels / 9.0)[:, None, None]
    model = sports_model()
    model.compile(
        optimizer=cnnx.optimizers.Adagrad(learning_rate=1e-3), loss="categorical_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(x, cnnx.utils.to_categorical(labels, 10), batch_size=16, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.optimizer.iterations == 4 * 13
