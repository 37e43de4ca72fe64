"""Small datasets loaded as NumPy arrays, like `keras.datasets`."""

from . import cifar10, fashion_mnist, mnist

__all__ = ["cifar10", "fashion_mnist", "mnist"]
