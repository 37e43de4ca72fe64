"""Depthwise and depthwise-separable convolutions with Keras' names, arguments and defaults
(``keras.layers.DepthwiseConv2D``, ``keras.layers.SeparableConv2D``); channels-last. Also
available from ``cnnx.layers``."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core, regularizers
from .layers import Layer, _activation_name, _check_data_format, _positive_int_tuple, _string

__all__ = ["DepthwiseConv2D", "SeparableConv2D"]


def _int_arg(value: Any, arg: str, who: str) -> int:
    """An int (the core then checks that it is positive, with Keras' meaning)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{who}: expected {arg} to be a positive integer, received {arg}={value!r}")
    return int(value)


class _DepthwiseBase(Layer):
    """What both layers share: the window arguments and the weight penalties by weight name."""

    # argument name -> the core's weight name
    _regularized: dict[str, str] = {}

    def _window_args(
        self, kernel_size: Any, strides: Any, padding: Any, data_format: Any, dilation_rate: Any, depth_multiplier: Any
    ) -> None:
        w = self._where
        _check_data_format(data_format, w)
        self.kernel_size = _positive_int_tuple(kernel_size, 2, "kernel_size", w)
        self.strides = _positive_int_tuple(strides, 2, "strides", w)
        self.dilation_rate = _positive_int_tuple(dilation_rate, 2, "dilation_rate", w)
        self.padding = _string(padding, "padding", w)
        self.depth_multiplier = _int_arg(depth_multiplier, "depth_multiplier", w)

    def _set_weight_regularizers(self, **given: Any) -> None:
        for arg, weight in self._regularized.items():
            reg = regularizers.get(given[arg])
            setattr(self, arg, reg)
            if reg is not None:
                self._core.set_regularizer(weight, reg.l1, reg.l2)

    def _weight_regularizer_config(self) -> dict:
        return {arg: regularizers.serialize(getattr(self, arg)) for arg in self._regularized}


class DepthwiseConv2D(_DepthwiseBase):
    """``keras.layers.DepthwiseConv2D``: each input channel convolved with its own
    ``depth_multiplier`` filters; output channel ``c * depth_multiplier + m``. Weights:
    kernel (kh, kw, cin, depth_multiplier), bias (cin * depth_multiplier,)."""

    _regularized = {"depthwise_regularizer": "kernel", "bias_regularizer": "bias"}

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        w = self._where
        self._window_args(kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier)
        self.activation = _activation_name(activation, w)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = _string(depthwise_initializer, "depthwise_initializer", w)
        self.bias_initializer = _string(bias_initializer, "bias_initializer", w)
        self._core = _core.DepthwiseConv2D(
            self.name,
            self.kernel_size,
            self.strides,
            self.padding,
            self.depth_multiplier,
            self.dilation_rate,
            self.activation,
            self.use_bias,
            self.depthwise_initializer,
            self.bias_initializer,
        )
        self._set_weight_regularizers(depthwise_regularizer=depthwise_regularizer, bias_regularizer=bias_regularizer)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": self.dilation_rate,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "depthwise_initializer": self.depthwise_initializer,
            "bias_initializer": self.bias_initializer,
            **self._weight_regularizer_config(),
        }


class SeparableConv2D(_DepthwiseBase):
    """``keras.layers.SeparableConv2D``: a depthwise convolution (no bias) followed by a 1x1
    convolution with bias and activation. Weights: depthwise_kernel (kh, kw, cin,
    depth_multiplier), pointwise_kernel (1, 1, cin * depth_multiplier, filters), bias (filters,)."""

    _regularized = {
        "depthwise_regularizer": "depthwise_kernel",
        "pointwise_regularizer": "pointwise_kernel",
        "bias_regularizer": "bias",
    }

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: str = "glorot_uniform",
        pointwise_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        w = self._where
        self.filters = _int_arg(filters, "filters", w)
        self._window_args(kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier)
        self.activation = _activation_name(activation, w)
        self.use_bias = bool(use_bias)
        self.depthwise_initializer = _string(depthwise_initializer, "depthwise_initializer", w)
        self.pointwise_initializer = _string(pointwise_initializer, "pointwise_initializer", w)
        self.bias_initializer = _string(bias_initializer, "bias_initializer", w)
        self._core = _core.SeparableConv2D(
            self.name,
            self.filters,
            self.kernel_size,
            self.strides,
            self.padding,
            self.dilation_rate,
            self.depth_multiplier,
            self.activation,
            self.use_bias,
            self.depthwise_initializer,
            self.pointwise_initializer,
            self.bias_initializer,
        )
        self._set_weight_regularizers(
            depthwise_regularizer=depthwise_regularizer,
            pointwise_regularizer=pointwise_regularizer,
            bias_regularizer=bias_regularizer,
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": "channels_last",
            "dilation_rate": self.dilation_rate,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "depthwise_initializer": self.depthwise_initializer,
            "pointwise_initializer": self.pointwise_initializer,
            "bias_initializer": self.bias_initializer,
            **self._weight_regularizer_config(),
        }
