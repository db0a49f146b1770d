"""Max-pooling with Caffe's ceil rounding, which the original SqueezeNets were trained with."""

from __future__ import annotations

import keras
from keras import layers, ops

from squeezekit.graph import pooled_size


@keras.saving.register_keras_serializable(package="squeezekit")
class RoundedMaxPooling2D(layers.Layer):
    """Max-pooling without padding whose output size rounds up (``"ceil"``, Caffe) or down (``"floor"``).

    Caffe computes ``ceil((size - pool_size) / strides) + 1`` outputs: a 14-pixel map pools to 7 where
    Keras' "valid" pooling gives 6 (odd sizes agree; "same" pooling gives 57 for 113 where both give
    56). Since ``ceil(a / s) == floor((a + s - 1) / s)``,
    ceil mode equals floor mode on a map padded by ``strides - 1`` pixels at the bottom and right; the
    pad never fills a whole window when ``pool_size >= strides``. The pad value must not win the max:
    ``pad_value=0.0`` is exact after a ReLU (inputs are >= 0) and exports as a plain zero pad, while the
    default ``-inf`` is exact for any input.
    """

    def __init__(
        self,
        pool_size: int = 3,
        strides: int = 2,
        rounding: str = "ceil",
        pad_value: float = float("-inf"),
        data_format: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rounding not in ("ceil", "floor"):
            raise ValueError(f"Expected rounding to be 'ceil' or 'floor'. Received: rounding={rounding!r}")
        if pool_size < strides:
            raise ValueError(
                f"Expected pool_size >= strides. Received: pool_size={pool_size}, strides={strides}"
            )
        self.pool_size = pool_size
        self.strides = strides
        self.rounding = rounding
        self.pad_value = float(pad_value)
        self.data_format = data_format or keras.config.image_data_format()

    def _ceil_padding(self, shape):
        """Bottom/right pad that makes floor pooling count like ceil pooling.

        With a known size the pad is the exact remainder, usually none: at 224x224 every SqueezeNet
        v1.1 map is odd-sized and ceil equals floor, so no Pad op reaches exported graphs. With an
        unknown size ``strides - 1`` pixels are always enough.
        """
        axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        padding = [(0, 0)] * 4
        for axis in axes:
            size = shape[axis]
            padding[axis] = (0, self.strides - 1 if size is None else (-(size - self.pool_size)) % self.strides)
        return padding

    def _same_is_equivalent(self, shape, padding) -> bool:
        """Whether "same" pooling computes exactly this ceil pooling: the same output size, and its pad
        all at the bottom and right, of the same size (as for every even size with a 3x3/2 window).
        "same" pooling never lets its pad win the max, like ``-inf`` (and like ``0.0`` after a ReLU), and
        it exports as one pooling op: no Pad op copying the map, which costs a microcontroller's arena
        (the cifar recipe's model: 168,512 -> 114,928 bytes in TFLM)."""
        axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis in axes:
            size = shape[axis]
            if size is None:
                return False
            out = -(-size // self.strides)
            total = max((out - 1) * self.strides + self.pool_size - size, 0)
            if out != pooled_size(size, self.pool_size, self.strides, "ceil") or total // 2 != 0 \
                    or total != padding[axis][1]:
                return False
        return True

    def call(self, inputs):
        if self.rounding == "ceil" and self.strides > 1:
            shape = tuple(inputs.shape)
            padding = self._ceil_padding(shape)
            if any(after for _, after in padding):
                if self._same_is_equivalent(shape, padding):
                    return ops.max_pool(inputs, self.pool_size, self.strides, padding="same",
                                        data_format=self.data_format)
                inputs = ops.pad(inputs, padding, constant_values=self.pad_value)
        return ops.max_pool(
            inputs, self.pool_size, self.strides, padding="valid", data_format=self.data_format
        )

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        axes = (1, 2) if self.data_format == "channels_last" else (2, 3)
        for axis in axes:
            shape[axis] = pooled_size(shape[axis], self.pool_size, self.strides, self.rounding)
        return tuple(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "rounding": self.rounding,
            "pad_value": self.pad_value,
            "data_format": self.data_format,
        }
