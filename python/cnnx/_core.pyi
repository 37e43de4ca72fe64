"""Type stub for the private compiled module ``cnnx._core`` (pybind11). Use the cnnx package."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

__version__: str
MAX_THREADS: int  # 1024: set_num_threads' upper bound

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def set_random_seed(seed: int) -> None: ...
def next_seed() -> int: ...
def get_isa() -> str: ...
def best_isa() -> str: ...
def set_isa(isa: str) -> None: ...
def gemm(a: FloatArray, b: FloatArray, trans_a: bool = False, trans_b: bool = False) -> FloatArray: ...
def gemm_ref(a: FloatArray, b: FloatArray, trans_a: bool = False, trans_b: bool = False) -> FloatArray: ...

class Layer:
    @property
    def name(self) -> str: ...
    @property
    def class_name(self) -> str: ...
    @property
    def built(self) -> bool: ...
    @property
    def input_shape(self) -> list[int]: ...
    @property
    def output_shape(self) -> list[int]: ...
    def build(self, input_shape: Sequence[int], seed: int, max_param_floats: int = -1) -> list[int]: ...
    def count_params(self) -> int: ...
    def weight_names(self) -> list[str]: ...
    def weight_trainable(self) -> list[bool]: ...
    def get_weights(self) -> list[FloatArray]: ...
    def set_weights(self, weights: list[FloatArray]) -> None: ...
    def get_gradients(self) -> list[FloatArray]: ...
    def forward(self, x: FloatArray, training: bool = False) -> FloatArray: ...
    def backward(self, x: FloatArray, y: FloatArray, dy: FloatArray) -> FloatArray: ...
    def time_step(self, x: FloatArray, repeats: int, backward: bool, need_dx: bool = True) -> float: ...

class Conv2D(Layer):
    def __init__(
        self,
        name: str,
        filters: int,
        kernel_size: tuple[int, int],
        strides: tuple[int, int],
        padding: str,
        dilation_rate: tuple[int, int],
        activation: str,
        use_bias: bool,
        kernel_initializer: str,
        bias_initializer: str,
    ) -> None: ...

class DepthwiseConv2D(Layer):
    def __init__(
        self,
        name: str,
        kernel_size: tuple[int, int],
        strides: tuple[int, int],
        padding: str,
        depth_multiplier: int,
        dilation_rate: tuple[int, int],
        activation: str,
        use_bias: bool,
        depthwise_initializer: str,
        bias_initializer: str,
    ) -> None: ...

class SeparableConv2D(Layer):
    def __init__(
        self,
        name: str,
        filters: int,
        kernel_size: tuple[int, int],
        strides: tuple[int, int],
        padding: str,
        dilation_rate: tuple[int, int],
        depth_multiplier: int,
        activation: str,
        use_bias: bool,
        depthwise_initializer: str,
        pointwise_initializer: str,
        bias_initializer: str,
    ) -> None: ...

class MaxPooling2D(Layer):
    def __init__(self, name: str, pool_size: tuple[int, int], strides: tuple[int, int], padding: str) -> None: ...

class Dense(Layer):
    def __init__(
        self, name: str, units: int, activation: str, use_bias: bool, kernel_initializer: str, bias_initializer: str
    ) -> None: ...

class Flatten(Layer):
    def __init__(self, name: str) -> None: ...

class Dropout(Layer):
    def __init__(self, name: str, rate: float, noise_shape: Sequence[int], seed: int | None) -> None: ...

class BatchNormalization(Layer):
    def __init__(
        self,
        name: str,
        axis: int,
        momentum: float,
        epsilon: float,
        center: bool,
        scale: bool,
        beta_initializer: str,
        gamma_initializer: str,
        moving_mean_initializer: str,
        moving_variance_initializer: str,
    ) -> None: ...

class AveragePooling2D(Layer):
    def __init__(self, name: str, pool_size: tuple[int, int], strides: tuple[int, int], padding: str) -> None: ...

class GlobalAveragePooling2D(Layer):
    def __init__(self, name: str, keepdims: bool) -> None: ...

class GlobalMaxPooling2D(Layer):
    def __init__(self, name: str, keepdims: bool) -> None: ...

class Activation(Layer):
    def __init__(self, name: str, activation: str) -> None: ...

class ReLU(Activation):
    def __init__(self, name: str, max_value: float | None, negative_slope: float, threshold: float) -> None: ...

class LeakyReLU(Activation):
    def __init__(self, name: str, negative_slope: float) -> None: ...

class ELU(Activation):
    def __init__(self, name: str, alpha: float) -> None: ...

class Softmax(Activation):
    def __init__(self, name: str, axis: int) -> None: ...

class Rescaling(Layer):
    def __init__(self, name: str, scale: float, offset: float) -> None: ...

class Reshape(Layer):
    def __init__(self, name: str, target_shape: Sequence[int]) -> None: ...

class Resizing(Layer):
    def __init__(self, name: str, height: int, width: int, interpolation: str, crop_to_aspect_ratio: bool) -> None: ...

class ImageAugmentation(Layer):
    def last_parameters(self) -> FloatArray: ...

class RandomFlip(ImageAugmentation):
    def __init__(self, name: str, mode: str, seed: int | None) -> None: ...

class RandomRotation(ImageAugmentation):
    def __init__(
        self,
        name: str,
        factor: tuple[float, float],
        fill_mode: str,
        interpolation: str,
        seed: int | None,
        fill_value: float,
    ) -> None: ...

class RandomTranslation(ImageAugmentation):
    def __init__(
        self,
        name: str,
        height_factor: tuple[float, float],
        width_factor: tuple[float, float],
        fill_mode: str,
        interpolation: str,
        seed: int | None,
        fill_value: float,
    ) -> None: ...

class RandomZoom(ImageAugmentation):
    def __init__(
        self,
        name: str,
        height_factor: tuple[float, float],
        width_factor: tuple[float, float] | None,
        fill_mode: str,
        interpolation: str,
        seed: int | None,
        fill_value: float,
    ) -> None: ...

class RandomContrast(ImageAugmentation):
    def __init__(
        self, name: str, factor: tuple[float, float], value_range: tuple[float, float], seed: int | None
    ) -> None: ...

class Loss:
    @property
    def name(self) -> str: ...
    def compute(
        self, output: FloatArray, target: FloatArray, fused: bool = False, sample_weight: FloatArray | None = None
    ) -> tuple[float, FloatArray]: ...
    @property
    def fusable_activation(self) -> str: ...

def make_crossentropy(sparse: bool, from_logits: bool, label_smoothing: float = 0.0) -> Loss: ...
def make_binary_crossentropy(from_logits: bool, label_smoothing: float = 0.0) -> Loss: ...
def make_mean_squared_error() -> Loss: ...
def make_mean_absolute_error() -> Loss: ...

class Optimizer:
    @property
    def name(self) -> str: ...
    learning_rate: float
    iterations: int
    clipvalue: float
    clipnorm: float
    global_clipnorm: float
    weight_decay: float
    def set_options(self, clipvalue: float, clipnorm: float, global_clipnorm: float, weight_decay: float) -> None: ...

class Adagrad(Optimizer):
    def __init__(self, learning_rate: float, initial_accumulator_value: float, epsilon: float) -> None: ...
    initial_accumulator_value: float
    epsilon: float

class SGD(Optimizer):
    def __init__(self, learning_rate: float, momentum: float, nesterov: bool) -> None: ...
    momentum: float
    nesterov: bool

class Adam(Optimizer):
    def __init__(self, learning_rate: float, beta_1: float, beta_2: float, epsilon: float) -> None: ...
    beta_1: float
    beta_2: float
    epsilon: float

class RMSprop(Optimizer):
    def __init__(self, learning_rate: float, rho: float, momentum: float, epsilon: float) -> None: ...
    rho: float
    momentum: float
    epsilon: float

class Sequential:
    def __init__(self) -> None: ...
    def add(self, layer: Layer) -> None: ...
    def build(self, input_shape: Sequence[int]) -> None: ...
    @property
    def built(self) -> bool: ...
    @property
    def output_shape(self) -> list[int]: ...
    def compile(self, loss: Loss, optimizer: Optimizer) -> None: ...
    def set_metrics(self, accuracy: str, threshold: float = 0.5, top_k: int = 0) -> None: ...
    def train_step(
        self, x: FloatArray, y: FloatArray, index: npt.NDArray[np.int64], sample_weight: FloatArray | None = None
    ) -> tuple[float, int, int, int]: ...
    def test_step(
        self, x: FloatArray, y: FloatArray, sample_weight: FloatArray | None = None
    ) -> tuple[float, int, int, int]: ...
    def predict(self, x: FloatArray, batch_size: int) -> FloatArray: ...
    def get_optimizer_slots(self) -> list[list[FloatArray]]: ...
    def set_optimizer_slots(self, slots: list[list[FloatArray]]) -> None: ...
    # (per-layer weights, per-parameter slots or None, iterations or None) under one lock.
    def snapshot(
        self, optimizer: bool = True
    ) -> tuple[list[list[FloatArray]], list[list[FloatArray]] | None, int | None]: ...
    def set_weights(self, per_layer: list[list[FloatArray]]) -> None: ...
    def get_layer_weights(self, layer: Layer) -> list[FloatArray]: ...
    def set_layer_weights(self, layer: Layer, weights: list[FloatArray]) -> None: ...
    def layer_forward(self, layer: Layer, x: FloatArray, training: bool = False) -> FloatArray: ...
    def set_profiling(self, on: bool) -> None: ...
    def profile(self) -> list[tuple[str, float, float, int, int]]: ...

def peak_gflops(threads: int, seconds: float = 0.5) -> float: ...
