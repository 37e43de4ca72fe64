"""The core's SHA-256 (src/cpp/io/sha256.cpp, written from FIPS 180-4 for the model file's
checksum) against the FIPS 180-4 / NIST example vectors and against hashlib."""

import hashlib

import numpy as np
import pytest

from cnnx import _core

# FIPS 180-4 examples (NIST CSRC "SHA256.pdf" and "SHA2_Additional.pdf")
VECTORS = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",  # 448 bits
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (
        b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",  # 896 bits
    ),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]


@pytest.mark.parametrize("message,digest", VECTORS, ids=["empty", "abc", "448-bit", "896-bit", "million-a"])
def test_fips_vectors(message, digest):
    assert _core._sha256(message) == digest
    # streamed in pieces that straddle the 64-byte blocks and the padding boundary at 56
    assert _core._sha256(message, [1, 55, 8, 63, 65]) == digest


def test_against_hashlib_on_random_inputs(rng):
    # every length around the block and padding boundaries, then longer ones
    lengths = list(range(0, 200)) + [255, 256, 447, 448, 511, 512, 1000, 4095, 4096, 65537, 1_000_003]
    for n in lengths:
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        pieces = [int(p) for p in rng.integers(0, 130, 4)]
        assert _core._sha256(data) == hashlib.sha256(data).hexdigest(), n
        assert _core._sha256(data, pieces) == hashlib.sha256(data).hexdigest(), (n, pieces)
