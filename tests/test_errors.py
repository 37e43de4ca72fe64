"""Bad input gives a clear ValueError/TypeError naming the layer, the expected and the received
value -- never a crash, an abort or a hang."""

import numpy as np
import pytest

from cnnx import Sequential
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D


def small_model(loss="categorical_crossentropy"):
    model = Sequential(
        [Input((8, 8, 1)), Conv2D(4, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(10, activation="softmax")]
    )
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    return model


X = np.zeros((4, 8, 8, 1), np.float32)
Y = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]


def test_wrong_rank():
    with pytest.raises(
        ValueError,
        match=r"layer 'conv2d.*' \(Conv2D\) expected shape \(None, 8, 8, 1\), "
        r"received \(4, 8, 8\); add the channel axis",
    ):
        small_model().fit(X[..., 0], Y, verbose=0)


def test_wrong_channels():
    with pytest.raises(ValueError, match=r"expected shape \(None, 8, 8, 1\), received \(4, 8, 8, 3\)"):
        small_model().predict(np.zeros((4, 8, 8, 3), np.float32))


def test_label_count_mismatch():
    with pytest.raises(ValueError, match="expected y to have 4 samples to match x, received 3 samples"):
        small_model().fit(X, Y[:3], verbose=0)


def test_labels_not_one_hot():
    with pytest.raises(
        ValueError,
        match="categorical_crossentropy: expected one-hot labels with 10 values per "
        "sample.*received 1.*sparse_categorical_crossentropy",
    ):
        small_model().fit(X, np.array([0, 1, 2, 3]), verbose=0)


def test_sparse_label_out_of_range():
    with pytest.raises(ValueError, match=r"expected integer labels in \[0, 9\], received 12"):
        small_model("sparse_categorical_crossentropy").fit(X, np.array([0, 1, 12, 3]), verbose=0)


def test_empty_array():
    with pytest.raises(ValueError, match="expected at least one sample, received x with shape"):
        small_model().fit(X[:0], Y[:0], verbose=0)


def test_nan_in_input():
    x = X.copy()
    x[2, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains NaN or infinity \(first in sample 2\)"):
        small_model().fit(x, Y, verbose=0)
    y = Y.copy()
    y[1, 0] = np.inf
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        small_model().fit(X, y, verbose=0)


def test_non_numeric_input():
    with pytest.raises(TypeError, match="expected x to be a numeric array"):
        small_model().fit(np.array([["a"]] * 4), Y, verbose=0)
    with pytest.raises(TypeError, match="expected x to be a numpy array, received None"):
        small_model().predict(None)


@pytest.mark.parametrize("opt", ["adamm", "nadam_typo"])
def test_unknown_optimizer(opt):
    with pytest.raises(ValueError, match=f"optimizer identifier.*received optimizer='{opt}'"):
        Sequential([Input((2,)), Dense(2)]).compile(optimizer=opt, loss="categorical_crossentropy")


def test_unknown_loss_and_metric():
    model = Sequential([Input((2,)), Dense(2)])
    with pytest.raises(ValueError, match="loss identifier.*received loss='crossentropy_typo'"):
        model.compile(optimizer="adam", loss="crossentropy_typo")
    with pytest.raises(TypeError, match="optimizer identifier"):
        model.compile(optimizer=3, loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["f1"])
    with pytest.raises(ValueError, match="received loss=None"):
        model.compile(optimizer="adam")


def test_fit_before_compile():
    with pytest.raises(ValueError, match=r"call compile\(\) before fit\(\)"):
        Sequential([Input((8, 8, 1)), Flatten(), Dense(10)]).fit(X, Y, verbose=0)


@pytest.mark.parametrize(
    "make,exc,pattern",
    [
        (
            lambda: Conv2D(0, 3),
            ValueError,
            r"Conv2D 'conv2d.*': expected filters to be a positive integer, received filters=0",
        ),
        (lambda: Conv2D(8, (3, 0)), ValueError, r"expected positive kernel_size, received kernel_size=\(3, 0\)"),
        (
            lambda: Conv2D(8, 3, padding="full"),
            ValueError,
            "expected padding 'valid' or 'same', received padding='full'",
        ),
        (lambda: Conv2D(8, 3, activation="relux"), ValueError, "unknown activation 'relux'"),
        (lambda: Conv2D(8, 3, strides=(1, 2, 3)), TypeError, r"expected strides to be an int or a tuple of 2 ints"),
        (lambda: Conv2D(8, 3, data_format="channels_first"), ValueError, "channels-last"),
        (lambda: Conv2D(8, 3, kernel_initializer="glorot"), ValueError, "unknown initializer 'glorot'"),
        (lambda: Conv2D(8.5, 3), TypeError, "expected filters to be a positive integer"),
        (lambda: Conv2D(8, 3, foo=1), TypeError, "Unrecognized keyword arguments passed to Conv2D"),
        (lambda: MaxPooling2D(0), ValueError, r"expected positive pool_size, received pool_size=\(0, 0\)"),
        (lambda: Dense(-1), ValueError, "expected units to be a positive integer, received units=-1"),
        (lambda: Input((28, 0, 1)), ValueError, "positive dimensions"),
    ],
)
def test_invalid_layer_arguments(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_input_smaller_than_kernel():
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d.*': input \(None, 2, 2, 1\) is smaller than the kernel"):
        Sequential([Input((2, 2, 1)), Conv2D(4, 3)])
    with pytest.raises(ValueError, match=r"MaxPooling2D .*smaller than pool_size"):
        Sequential([Input((1, 5, 1)), MaxPooling2D(2)])


def test_dense_on_wrong_shape_and_conv_on_flat():
    with pytest.raises(
        ValueError,
        match=r"Conv2D 'conv2d.*': expected input of rank 4 \(batch, height, width, "
        r"channels\), received shape \(None, 784\)",
    ):
        Sequential([Input((784,)), Conv2D(4, 3)])


def test_set_weights_wrong_shape():
    model = small_model()
    with pytest.raises(
        ValueError, match=r"Conv2D 'conv2d.*': expected kernel of shape \(3, 3, 1, 4\), received \(3, 3, 4\)"
    ):
        model.layers[0].set_weights([np.zeros((3, 3, 4)), np.zeros(4)])
    with pytest.raises(ValueError, match="expected a list of 2 weight arrays, received 1"):
        model.layers[0].set_weights([np.zeros((3, 3, 1, 4))])


def test_bad_batch_size_and_validation_split():
    model = small_model()
    with pytest.raises(ValueError, match="expected batch_size to be a positive integer, received batch_size=0"):
        model.fit(X, Y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split in \(0, 1\)"):
        model.fit(X, Y, validation_split=1.5, verbose=0)


def test_add_wrong_type_and_input_not_first():
    model = Sequential()
    with pytest.raises(TypeError, match="expected a cnnx Layer instance, received 'relu'"):
        model.add("relu")
    model.add(Dense(2))
    with pytest.raises(ValueError, match="Input can only be the first"):
        model.add(Input((3,)))


def test_predict_before_input_known():
    with pytest.raises(ValueError, match="the input shape is unknown"):
        Sequential([Dense(2)]).build()


def test_core_rejects_wrong_dtype_directly():
    # Even a direct call into the private module cannot crash the process.
    model = small_model()
    with pytest.raises(ValueError, match="build the model"):
        model._core.train_step(X, Y, np.array([0], np.int64))
    model.build()
    with pytest.raises(TypeError):
        model._core.predict(np.zeros((1, 8, 8, 1), np.float64), 1)
    with pytest.raises(IndexError, match="out of range"):
        model._core.train_step(X, Y, np.array([0, 7], np.int64))
