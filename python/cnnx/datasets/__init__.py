"""Small datasets loaded as NumPy arrays, like `keras.datasets`."""

from . import mnist

__all__ = ["mnist"]
