"""Feature-map size arithmetic: the one copy of the conv and pool size formulas."""

from __future__ import annotations

from squeezekit.config import SqueezeNetConfig


def conv_output_size(size: int | None, kernel: int, stride: int, padding: str) -> int | None:
    """Keras' (and ONNX's) convolution output size; ``"same"`` pads to ``ceil(size / stride)``."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def pooled_size(size: int | None, pool_size: int, stride: int, rounding: str) -> int | None:
    """Max-pool output size; ``"ceil"`` is Caffe's rounding (the original models were trained with it)."""
    if size is None:
        return None
    span = size - pool_size
    if rounding == "ceil":
        return -(-span // stride) + 1
    return span // stride + 1


def _fits(size: int, config: SqueezeNetConfig) -> bool:
    """Whether a square input of ``size`` keeps every map non-empty and every pool window inside its input
    (Caffe's ceil mode would otherwise produce windows lying wholly in the padding)."""
    current = conv_output_size(size, config.conv1_kernel, config.conv1_stride, config.conv1_padding)
    if current < 1:
        return False
    for name in ("conv1",) + config.fire_names:
        if name in config.pool_after:
            if current < config.pool_size:
                return False
            current = pooled_size(current, config.pool_size, config.pool_stride, config.pool_rounding)
    return True


def minimum_input_size(config: SqueezeNetConfig) -> int:
    """Smallest square input for which every feature map keeps at least one pixel."""
    size = 1
    while not _fits(size, config):
        size += 1
    return size


def check_input_size(config: SqueezeNetConfig, height: int | None, width: int | None) -> None:
    minimum = minimum_input_size(config)
    for axis, value in (("height", height), ("width", width)):
        if value is not None and value < minimum:
            raise ValueError(
                f"Expected an input {axis} of at least {minimum} pixels for this architecture "
                f"(smaller inputs shrink a feature map to nothing). Received: input_shape {axis}={value}"
            )
