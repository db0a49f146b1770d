"""SqueezeNet builders with the keras.applications signature."""

from __future__ import annotations

import os

from squeezekit.config import SqueezeNetConfig, get_preset
from squeezekit.models.layer_table import check_input_size

# Metaparameters that change neither the weights nor what they mean: the only ones a caller may
# override while loading pretrained weights.
_WEIGHT_NEUTRAL_FIELDS = ("pool_rounding", "dropout")


def _check_arguments(config, *, include_top, weights, input_shape, pooling, classes, arch_name):
    """Validate everything before any layer is made, with messages naming the parameter."""
    if not (weights is None or weights == "imagenet" or (isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights))):
        raise ValueError(
            "Expected weights to be None (random initialisation), 'imagenet' (pretrained) or the path to an "
            f"existing weights file. Received: weights={weights!r}"
        )
    if include_top and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise ValueError(f"Expected classes to be an integer >= 1 when include_top=True. Received: classes={classes!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"Expected pooling to be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if weights == "imagenet":
        if arch_name is None:
            raise ValueError("weights='imagenet' exists only for the presets squeezenet1_0 and squeezenet1_1.")
        if include_top and classes != 1000:
            raise ValueError(
                "Expected classes=1000 with weights='imagenet' and include_top=True (the pretrained classifier "
                f"has 1000 ImageNet classes). Received: classes={classes}"
            )
    if input_shape is not None:
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
            raise ValueError(
                "Expected input_shape to have rank 3: (height, width, channels) for channels_last or "
                f"(channels, height, width) for channels_first. Received: input_shape={input_shape!r}"
            )
        import keras  # only for the data format; layers come later

        if keras.config.image_data_format() == "channels_last":
            height, width, channels = input_shape
        else:
            channels, height, width = input_shape
        if channels is not None and (not isinstance(channels, int) or channels < 1):
            raise ValueError(f"Expected at least one input channel. Received: input_shape={tuple(input_shape)!r}")
        if weights == "imagenet" and channels not in (None, 3):
            raise ValueError(f"Expected 3 input channels with weights='imagenet'. Received: input_shape={tuple(input_shape)!r}")
        check_input_size(config, height, width)


def SqueezeNet(
    config: SqueezeNetConfig,
    *,
    include_top: bool = True,
    weights: str | os.PathLike | None = None,
    input_tensor=None,
    input_shape=None,
    pooling: str | None = None,
    classes: int = 1000,
    classifier_activation="softmax",
    name: str = "squeezenet",
    _arch_name: str | None = None,
):
    """Build a SqueezeNet from its metaparameters (see ``SqueezeNetConfig``).

    Layer names are fixed: ``conv1``, ``pool1``, ``fire2`` .. ``fire9`` (with sublayers ``squeeze1x1``,
    ``expand1x1``, ``expand3x3``), ``fireN_add`` / ``fireN_bypass`` for bypasses, ``drop9``, ``conv10``,
    ``pool10`` and ``predictions``.
    """
    if not isinstance(config, SqueezeNetConfig):
        raise ValueError(f"Expected config to be a SqueezeNetConfig. Received: config={config!r}")
    _check_arguments(
        config, include_top=include_top, weights=weights, input_shape=input_shape, pooling=pooling,
        classes=classes, arch_name=_arch_name,
    )
    entry = None
    if weights == "imagenet":
        from squeezekit.weights import get_weights_entry

        entry = get_weights_entry(_arch_name)
        preset = get_preset(_arch_name)
        # The entry's own overrides (v1.0's padded classifier) are applied below, not compared.
        fixed = set(_WEIGHT_NEUTRAL_FIELDS) | set(entry.config_overrides)
        differing = [f for f in preset.to_dict() if f not in fixed and getattr(config, f) != getattr(preset, f)]
        if differing:
            raise ValueError(
                f"weights='imagenet' needs the {_arch_name} architecture unchanged; these metaparameters differ: "
                + ", ".join(f"{f}={getattr(config, f)!r}" for f in differing)
            )
        config = config.replace(**entry.config_overrides)
        if input_shape is None and input_tensor is None:
            # The weights were trained on 227x227 crops; a fixed size also suits export.
            input_shape = entry.input_shape

    import keras
    from keras import layers

    from squeezekit.models.fire import Fire
    from squeezekit.models.normalization import BatchNormalization
    from squeezekit.models.pooling import RoundedMaxPooling2D

    data_format = keras.config.image_data_format()
    channel_axis = -1 if data_format == "channels_last" else 1
    if input_shape is None:
        input_shape = (None, None, 3) if data_format == "channels_last" else (3, None, None)
    if input_tensor is None:
        image_input = layers.Input(shape=tuple(input_shape), name="image")
    elif keras.backend.is_keras_tensor(input_tensor):
        image_input = input_tensor
    else:
        image_input = layers.Input(tensor=input_tensor, shape=tuple(input_shape))

    bn = config.batch_norm

    def conv_bn_relu(x, filters, kernel, conv_name, strides=1, relu=True, padding="valid"):
        x = layers.Conv2D(
            filters, kernel, strides=strides, padding=padding, use_bias=not bn,
            activation="relu" if relu and not bn else None, name=conv_name,
        )(x)
        if bn:
            x = BatchNormalization(axis=channel_axis, name=f"{conv_name}_bn")(x)
            if relu:
                x = layers.ReLU(name=f"{conv_name}_relu")(x)
        return x

    def max_pool(x, after: str, non_negative: bool):
        return RoundedMaxPooling2D(
            config.pool_size, config.pool_stride, rounding=config.pool_rounding,
            # A zero pad is exact after a ReLU and exports to plain Pad ops.
            pad_value=0.0 if non_negative else float("-inf"),
            name="pool1" if after == "conv1" else f"pool{after[4:]}",
        )(x)

    x = conv_bn_relu(
        image_input, config.conv1_filters, config.conv1_kernel, "conv1", strides=config.conv1_stride,
        padding=config.conv1_padding,
    )
    non_negative = True
    if "conv1" in config.pool_after:
        x = max_pool(x, "conv1", non_negative)

    bypass = config.bypass_kinds()
    for spec in config.fire_specs():
        out = Fire(spec.squeeze, spec.expand1x1, spec.expand3x3, batch_norm=bn, name=spec.name)(x)
        if bypass[spec.name] == "identity":
            out = layers.Add(name=f"{spec.name}_add")([out, x])
            non_negative = non_negative  # ReLU output + input: as non-negative as the input was
        elif bypass[spec.name] == "conv":
            shortcut = conv_bn_relu(x, spec.out_channels, 1, f"{spec.name}_bypass", relu=False)
            out = layers.Add(name=f"{spec.name}_add")([out, shortcut])
            non_negative = False
        else:
            non_negative = True
        x = out
        if spec.name in config.pool_after:
            x = max_pool(x, spec.name, non_negative)

    if include_top:
        x = layers.Dropout(config.dropout, name="drop9")(x)
        if config.classifier_pad:
            x = layers.ZeroPadding2D(config.classifier_pad, name="conv10_pad")(x)
        x = layers.Conv2D(
            classes, 1, activation="relu", name="conv10",
            # As in the original Caffe definition: a small Gaussian for the classifier.
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        )(x)
        x = layers.GlobalAveragePooling2D(name="pool10")(x)
        if classifier_activation is not None:
            x = layers.Activation(classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else image_input
    model = keras.Model(inputs, x, name=name)

    if entry is not None:
        from squeezekit.weights import load_pretrained_weights

        load_pretrained_weights(model, entry, include_top=include_top)
    elif weights is not None:
        model.load_weights(os.fspath(weights))
    return model


_BUILDER_DOC = """Instantiates SqueezeNet {version} ({description}).

    Reference: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
    <0.5MB model size", arXiv:1602.07360 (2016).

    The arguments follow ``keras.applications``. With ``weights="imagenet"`` the model carries the
    original ImageNet weights, converted from {source}; feed it images prepared by
    ``squeezekit.preprocess_input`` (Caffe convention: BGR, mean subtracted, no scaling).

    Args:
        include_top: whether to include the classifier (dropout, conv10, global average pooling).
        weights: None (random initialisation), "imagenet", or the path to a weights file.
        input_tensor: optional Keras tensor to use as image input.
        input_shape: optional shape tuple, e.g. (227, 227, 3). Defaults to (227, 227, 3) with
            pretrained weights, else (None, None, 3): any size from the architecture's minimum up.
        pooling: with include_top=False, None (4-D feature map), "avg" or "max" (global pooling).
        classes: number of classes when include_top=True (1000 with weights="imagenet").
        classifier_activation: activation of the "predictions" layer; None returns the pooled
            (non-negative) class scores.
        name: the model's name.
        **overrides: metaparameters of ``SqueezeNetConfig`` to change, e.g. ``bypass="simple"``,
            ``squeeze_ratio=0.25``, ``pool_rounding="floor"``, ``batch_norm=True``.

    Returns:
        A ``keras.Model``.
"""


def _preset_builder(arch_name: str, version: str, description: str, source: str):
    def builder(
        include_top: bool = True,
        weights: str | os.PathLike | None = "imagenet",
        input_tensor=None,
        input_shape=None,
        pooling: str | None = None,
        classes: int = 1000,
        classifier_activation="softmax",
        name: str = arch_name,
        **overrides,
    ):
        config = get_preset(arch_name).replace(**overrides)
        return SqueezeNet(
            config, include_top=include_top, weights=weights, input_tensor=input_tensor, input_shape=input_shape,
            pooling=pooling, classes=classes, classifier_activation=classifier_activation, name=name,
            _arch_name=arch_name,
        )

    builder.__name__ = builder.__qualname__ = arch_name
    builder.__doc__ = _BUILDER_DOC.format(version=version, description=description, source=source)
    return builder


squeezenet1_0 = _preset_builder(
    "squeezenet1_0", "v1.0", "the paper's model: 7x7 conv1, pools after conv1, fire4, fire8",
    "the Deep Compression release (pruned, 8-bit weight sharing)",
)
squeezenet1_1 = _preset_builder(
    "squeezenet1_1", "v1.1", "DeepScale's model with 2.4x less computation: 3x3 conv1, pools after conv1, fire3, fire5",
    "DeepScale's Caffe model (via its FP16 OpenVINO IR)",
)
