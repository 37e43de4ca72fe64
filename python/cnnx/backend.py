"""``cnnx.backend``: the few ``keras.backend`` functions that model code calls."""

from __future__ import annotations

__all__ = ["clear_session", "epsilon", "floatx", "image_data_format"]


def clear_session(free_memory: bool = True) -> None:
    """Resets the automatic layer names (``dense``, ``dense_1``, ... start again at ``dense``),
    as Keras' ``clear_session`` does. cnnx keeps no other global graph state, so nothing else
    changes: existing models keep working and the random seed is left as it is."""
    from .layers import _name_counts

    _name_counts.clear()


def floatx() -> str:
    """The float type cnnx computes in: always ``"float32"``."""
    return "float32"


def epsilon() -> float:
    """The fuzz factor Keras' losses clip probabilities with: ``1e-7``."""
    return 1e-7


def image_data_format() -> str:
    """cnnx's images are channels-last: ``"channels_last"``."""
    return "channels_last"
