"""The Fire module (SqueezeNet paper, section 3.2) as a serializable Keras 3 layer."""

from __future__ import annotations

import keras
from keras import layers, ops

from squeezekit.models.normalization import BatchNormalization


def _check_filters(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Expected {name} to be an integer >= {minimum}. Received: {name}={value!r}")


@keras.saving.register_keras_serializable(package="squeezekit")
class Fire(layers.Layer):
    """A 1x1 *squeeze* convolution feeding an *expand* layer of 1x1 and 3x3 convolutions.

    ``squeeze`` (s1x1) filters squeeze the channels reaching the 3x3 filters; the ``expand1x1`` (e1x1)
    and ``expand3x3`` (e3x3, same padding) outputs are concatenated along the channel axis. ReLU follows
    every convolution. Either expand branch may have zero filters (the paper's pct_3x3 sweep reaches
    1 % and 99 %; 0 and 100 % are the limits), but not both.

    The convolutions are sublayers named ``squeeze1x1``, ``expand1x1`` and ``expand3x3``, so weight
    paths read ``fire2/squeeze1x1/kernel`` like the original Caffe layer names.

    Args:
        squeeze: filters of the 1x1 squeeze convolution (s1x1).
        expand1x1: filters of the 1x1 expand convolution (e1x1).
        expand3x3: filters of the 3x3 expand convolution (e3x3).
        batch_norm: add batch normalisation between each convolution and its ReLU (not in the paper).
        kernel_initializer, kernel_regularizer: passed to every convolution.
        data_format: "channels_last" or "channels_first"; defaults to Keras' image data format.
    """

    def __init__(
        self,
        squeeze: int,
        expand1x1: int,
        expand3x3: int,
        batch_norm: bool = False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        data_format: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_filters("squeeze", squeeze, 1)
        _check_filters("expand1x1", expand1x1, 0)
        _check_filters("expand3x3", expand3x3, 0)
        if expand1x1 + expand3x3 < 1:
            raise ValueError(
                "Expected at least one expand filter (expand1x1 + expand3x3 >= 1). "
                f"Received: expand1x1={expand1x1}, expand3x3={expand3x3}"
            )
        self.squeeze = squeeze
        self.expand1x1 = expand1x1
        self.expand3x3 = expand3x3
        self.batch_norm = batch_norm
        self.data_format = data_format or keras.config.image_data_format()
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self._channel_axis = -1 if self.data_format == "channels_last" else 1

        def conv(name: str, filters: int, size: int):
            if filters == 0:
                return None, None
            convolution = layers.Conv2D(
                filters,
                size,
                padding="same",
                # Batch norm's beta takes the role of the bias.
                use_bias=not batch_norm,
                activation=None if batch_norm else "relu",
                kernel_initializer=self.kernel_initializer,
                kernel_regularizer=self.kernel_regularizer,
                data_format=self.data_format,
                name=name,
                dtype=self.dtype_policy,
            )
            norm = (
                BatchNormalization(axis=self._channel_axis, name=f"{name}_bn", dtype=self.dtype_policy)
                if batch_norm
                else None
            )
            return convolution, norm

        self.squeeze1x1, self.squeeze1x1_bn = conv("squeeze1x1", squeeze, 1)
        self.expand1x1_conv, self.expand1x1_bn = conv("expand1x1", expand1x1, 1)
        self.expand3x3_conv, self.expand3x3_bn = conv("expand3x3", expand3x3, 3)

    def build(self, input_shape):
        # Build the sublayers explicitly: loading a saved model restores weights right after build(),
        # before any call.
        self.squeeze1x1.build(input_shape)
        squeezed = self.squeeze1x1.compute_output_shape(input_shape)
        if self.squeeze1x1_bn is not None:
            self.squeeze1x1_bn.build(squeezed)
        for conv, norm in ((self.expand1x1_conv, self.expand1x1_bn), (self.expand3x3_conv, self.expand3x3_bn)):
            if conv is None:
                continue
            conv.build(squeezed)
            if norm is not None:
                norm.build(conv.compute_output_shape(squeezed))

    @staticmethod
    def _apply(conv, norm, x, training):
        x = conv(x)
        if norm is not None:
            x = ops.relu(norm(x, training=training))
        return x

    def call(self, inputs, training=None):
        squeezed = self._apply(self.squeeze1x1, self.squeeze1x1_bn, inputs, training)
        branches = [
            self._apply(conv, norm, squeezed, training)
            for conv, norm in ((self.expand1x1_conv, self.expand1x1_bn), (self.expand3x3_conv, self.expand3x3_bn))
            if conv is not None
        ]
        if len(branches) == 1:
            return branches[0]
        return ops.concatenate(branches, axis=self._channel_axis)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[self._channel_axis] = self.expand1x1 + self.expand3x3
        return tuple(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "squeeze": self.squeeze,
            "expand1x1": self.expand1x1,
            "expand3x3": self.expand3x3,
            "batch_norm": self.batch_norm,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "data_format": self.data_format,
        }
