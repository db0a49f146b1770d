"""SqueezeNet builders with the keras.applications signature."""

from __future__ import annotations

import os

from squeezekit import graph
from squeezekit.config import SqueezeNetConfig, config_fields
from squeezekit.registry import get_preset
from squeezekit.graph import INPUT, build_plan, check_input_size

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

    Layer names are those of the plan (``squeezekit.graph``): ``conv1``, ``pool1``, ``fire2`` .. ``fire9``
    (with sublayers ``squeeze1x1``, ``expand1x1``, ``expand3x3``), ``fireN_add`` / ``fireN_bypass`` for
    bypasses, ``drop9``, ``conv10``, ``pool10`` and ``predictions``.
    """
    if not isinstance(config, SqueezeNetConfig):
        raise ValueError(f"Expected config to be a SqueezeNetConfig. Received: config={config!r}")
    _check_arguments(
        config, include_top=include_top, weights=weights, input_shape=input_shape, pooling=pooling,
        classes=classes, arch_name=_arch_name,
    )
    entry = None
    if weights == "imagenet":
        entry, config = _pretrained_config(_arch_name, config)
        if input_shape is None and input_tensor is None:
            # The weights were trained on 227x227 crops; a fixed size also suits export.
            input_shape = entry.input_shape

    import keras

    data_format = keras.config.image_data_format()
    image_input = _image_input(input_tensor, input_shape, data_format)
    shape = tuple(image_input.shape[1:])
    height, width, channels = shape if data_format == "channels_last" else (shape[1], shape[2], shape[0])

    plan = build_plan(config, classes, input_size=(height, width), channels=channels, include_top=include_top,
                      pooling=pooling, activation=classifier_activation)
    outputs = {INPUT: image_input}
    for op in plan.ops[1:]:
        outputs[op.name] = keras_layers(op, data_format)([outputs[i] for i in op.inputs])

    inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else image_input
    model = keras.Model(inputs, outputs[plan.output.name], name=name)

    if entry is not None:
        from squeezekit.weights import load_pretrained_weights

        load_pretrained_weights(model, entry, include_top=include_top)
    elif weights is not None:
        model.load_weights(os.fspath(weights))
    return model


def create_model(name: str, **kwargs):
    """A Keras model for any registered name (see ``squeezekit.list_models``); ``arch.tag`` loads those
    weights. keras.applications arguments and metaparameter overrides pass through."""
    from squeezekit.registry import get_model_entry

    entry, weights = get_model_entry(name)
    if weights is not None:
        return pretrained_model(weights, **kwargs)
    overrides = {key: kwargs.pop(key) for key in list(kwargs) if key in config_fields()}
    return SqueezeNet(entry.config.replace(**overrides), name=kwargs.pop("name", entry.name), **kwargs)


def pretrained_model(entry, *, input_shape=None, include_top: bool = True, **kwargs):
    """A Keras model with the weights of a ``PretrainedWeights`` entry (any tag, not only the default)."""
    from squeezekit.weights import load_pretrained_weights

    config = get_preset(entry.arch).replace(**entry.config_overrides)
    kwargs.setdefault("name", entry.arch)
    model = SqueezeNet(config, weights=None, input_shape=input_shape or entry.input_shape, include_top=include_top,
                       **kwargs)
    load_pretrained_weights(model, entry, include_top=include_top)
    return model


def _image_input(input_tensor, input_shape, data_format: str):
    import keras

    if input_shape is None:
        input_shape = (None, None, 3) if data_format == "channels_last" else (3, None, None)
    if input_tensor is None:
        return keras.layers.Input(shape=tuple(input_shape), name=INPUT)
    if keras.backend.is_keras_tensor(input_tensor):
        return input_tensor
    return keras.layers.Input(tensor=input_tensor, shape=tuple(input_shape))


def _pretrained_config(arch_name: str, config: SqueezeNetConfig):
    """The weights entry of ``arch_name`` and ``config`` with the entry's own overrides applied."""
    from squeezekit.weights import get_weights_entry

    entry = get_weights_entry(arch_name)
    preset = get_preset(arch_name)
    # The entry's own overrides (v1.0's padded classifier) are applied below, not compared.
    fixed = set(_WEIGHT_NEUTRAL_FIELDS) | set(entry.config_overrides)
    differing = [f for f in config_fields() if f not in fixed and getattr(config, f) != getattr(preset, f)]
    if differing:
        raise ValueError(
            f"weights='imagenet' needs the {arch_name} architecture unchanged; these metaparameters differ: "
            + ", ".join(f"{f}={getattr(config, f)!r}" for f in differing)
        )
    return entry, config.replace(**entry.config_overrides)


def keras_layers(op: graph.Op, data_format: str):
    """A callable (a Keras layer, or a few in sequence) taking the list of ``op``'s input tensors."""
    from keras import layers

    from squeezekit.models.fire import Fire
    from squeezekit.models.pooling import RoundedMaxPooling2D

    if isinstance(op, graph.Conv):
        return _conv_layers(op, data_format)
    if isinstance(op, graph.Fire):
        single = Fire(op.squeeze.filters, op.expand1x1.filters if op.expand1x1 else 0,
                      op.expand3x3.filters if op.expand3x3 else 0, batch_norm=op.squeeze.batch_norm, name=op.name)
    elif isinstance(op, graph.MaxPool):
        # A zero pad is exact after a ReLU and exports to plain Pad ops.
        single = RoundedMaxPooling2D(op.size, op.stride, rounding=op.rounding, name=op.name,
                                     pad_value=0.0 if op.non_negative_input else float("-inf"))
    elif isinstance(op, graph.Add):
        return layers.Add(name=op.name)
    elif isinstance(op, graph.Pad):
        single = layers.ZeroPadding2D(op.pad, name=op.name)
    elif isinstance(op, graph.Dropout):
        single = layers.Dropout(op.rate, name=op.name)
    elif isinstance(op, graph.GlobalPool):
        pool = layers.GlobalAveragePooling2D if op.mode == "avg" else layers.GlobalMaxPooling2D
        single = pool(name=op.name)
    elif isinstance(op, graph.Activation):
        single = layers.Activation(op.function, name=op.name)
    else:
        raise TypeError(f"no Keras layer for plan op {op!r}")
    return lambda tensors: single(tensors[0])


def _conv_layers(op: graph.Conv, data_format: str):
    """Conv2D, then (with batch norm) BatchNormalization and ReLU layers named ``<conv>_bn``, ``<conv>_relu``."""
    import keras
    from keras import layers

    from squeezekit.models.normalization import BatchNormalization

    initializer = "glorot_uniform" if op.init_std is None else keras.initializers.RandomNormal(stddev=op.init_std)
    sequence = [layers.Conv2D(
        op.filters, op.kernel, strides=op.stride, padding=op.padding, use_bias=not op.batch_norm,
        activation="relu" if op.relu and not op.batch_norm else None, kernel_initializer=initializer, name=op.name,
    )]
    if op.batch_norm:
        sequence.append(BatchNormalization(axis=-1 if data_format == "channels_last" else 1, name=f"{op.name}_bn"))
        if op.relu:
            sequence.append(layers.ReLU(name=f"{op.name}_relu"))

    def apply(tensors):
        x = tensors[0]
        for layer in sequence:
            x = layer(x)
        return x

    return apply


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
