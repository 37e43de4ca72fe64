"""What the README promises about reproducibility: the same bits for any thread count within
one instruction set; close but not the same bits across instruction sets (AVX-512, AVX2 and the
portable kernels sum products in different orders)."""

from __future__ import annotations

import numpy as np
import pytest

import cnnx
from cnnx import _core
from cnnx.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D

ISAS = [
    isa
    for isa in ("avx512", "avx2", "generic")
    if ["generic", "avx2", "avx512"].index(isa) <= ["generic", "avx2", "avx512"].index(_core.get_isa())
]


def train(isa: str, threads: int) -> tuple[float, np.ndarray]:
    _core.set_isa(isa)
    cnnx.set_num_threads(threads)
    cnnx.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.random((128, 14, 14, 1), dtype=np.float32)
    y = cnnx.utils.to_categorical(rng.integers(0, 10, 128), 10)
    model = cnnx.Sequential(
        [
            Input((14, 14, 1)),
            Conv2D(16, 3, padding="same", activation="relu"),
            MaxPooling2D(2),
            Conv2D(32, 3, padding="same", activation="relu"),
            Flatten(),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    history = model.fit(x, y, batch_size=32, epochs=5, verbose=0, shuffle=False)
    return history.history["loss"][-1], np.concatenate([w.ravel() for w in model.get_weights()])


@pytest.fixture
def restore_isa_and_threads():
    isa, threads = _core.get_isa(), cnnx.get_num_threads()
    yield
    _core.set_isa(isa)
    cnnx.set_num_threads(threads)


def test_same_bits_for_any_thread_count_within_an_isa(restore_isa_and_threads):
    for isa in ISAS:
        loss_1, w_1 = train(isa, 1)
        loss_2, w_2 = train(isa, 2)
        assert loss_1 == loss_2, isa
        np.testing.assert_array_equal(w_1, w_2, err_msg=isa)


def test_isas_agree_closely(restore_isa_and_threads):
    results = {isa: train(isa, 2) for isa in ISAS}
    loss_ref, w_ref = results[ISAS[0]]
    for isa, (loss, w) in results.items():
        assert loss == pytest.approx(loss_ref, rel=1e-3), isa
        np.testing.assert_allclose(w, w_ref, rtol=1e-2, atol=1e-4, err_msg=isa)
