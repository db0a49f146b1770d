"""Build a SqueezeNet ONNX graph directly from its config and weights: numpy and ``onnx`` only.

The TensorFlow-free runtime uses this to produce its own artefacts from converted pretrained weights,
and ``squeezekit export --format onnx`` uses it for every squeezekit model whatever its Keras backend.
Writing the graph by hand (rather than tracing a TensorFlow graph with tf2onnx) keeps it small and
exactly the architecture: ONNX's MaxPool has Caffe's ceil rounding built in, batch normalisation is
folded into the convolutions, dropout disappears.

The graph takes NHWC float32 images (as LiteRT and Keras do; a single Transpose moves them to ONNX's
NCHW) with a free batch dimension, and returns class probabilities (or scores).
"""

from __future__ import annotations

import json

import numpy as np

from squeezekit.config import SqueezeNetConfig

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
METADATA_KEY = "squeezekit"
BATCH_NORM_EPSILON = 1e-3  # Keras' BatchNormalization default, used by squeezekit's builders


def fold_batch_norm(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays with every ``<conv>_bn`` batch norm folded into its convolution's kernel and bias."""
    folded = {key: value for key, value in arrays.items() if "_bn/" not in key}
    for key in arrays:
        if key.endswith("_bn/gamma"):
            layer = key[: -len("_bn/gamma")]
            kernel = arrays[f"{layer}/kernel"].astype(np.float32)
            bias = arrays.get(f"{layer}/bias", np.zeros(kernel.shape[-1], np.float32)).astype(np.float32)
            gamma, beta = arrays[f"{layer}_bn/gamma"], arrays[f"{layer}_bn/beta"]
            mean, variance = arrays[f"{layer}_bn/moving_mean"], arrays[f"{layer}_bn/moving_variance"]
            scale = (gamma / np.sqrt(variance + BATCH_NORM_EPSILON)).astype(np.float32)
            folded[f"{layer}/kernel"] = kernel * scale
            folded[f"{layer}/bias"] = ((bias - mean) * scale + beta).astype(np.float32)
    return folded


class _GraphBuilder:
    def __init__(self, arrays: dict[str, np.ndarray]):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.arrays = fold_batch_norm(arrays)
        self.nodes, self.initializers = [], []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x: str, layer: str, *, relu: bool, padding: str = "valid", stride: int = 1) -> str:
        """A Keras Conv2D (plus its batch norm, folded) as ONNX Conv, weights HWIO -> OIHW."""
        kernel = self.arrays[f"{layer}/kernel"].astype(np.float32)
        out_channels = kernel.shape[-1]
        bias = self.arrays.get(f"{layer}/bias", np.zeros(out_channels, np.float32)).astype(np.float32)
        weight = np.transpose(kernel, (3, 2, 0, 1)).astype(np.float32)
        kh, kw = weight.shape[2:]
        # Keras' "same" pads the extra pixel (even kernels, strides) at the end, as ONNX's SAME_UPPER does.
        geometry = {"auto_pad": "SAME_UPPER"} if padding == "same" else {"pads": [0, 0, 0, 0]}
        name = layer.replace("/", "_")
        y = self.node(
            "Conv", [x, self.constant(f"{name}_W", weight), self.constant(f"{name}_B", bias.astype(np.float32))],
            f"{name}_conv" if relu else name, kernel_shape=[kh, kw], strides=[stride, stride], **geometry,
        )
        return self.node("Relu", [y], name) if relu else y


def build_onnx_model(
    config: SqueezeNetConfig,
    arrays: dict[str, np.ndarray],
    *,
    input_size: tuple[int, int] | None,
    channels: int = 3,
    include_softmax: bool = True,
    metadata: dict | None = None,
):
    """An ``onnx.ModelProto`` of the SqueezeNet ``config`` with Keras-layout ``arrays`` (weight path -> array).

    ``input_size`` fixes (height, width) (None leaves them free); ``metadata`` is stored as JSON in the
    model's ``metadata_props`` under the key ``squeezekit``.
    """
    import onnx
    from onnx import TensorProto, helper

    g = _GraphBuilder(arrays)
    height, width = input_size if input_size else ("height", "width")
    classes = int(arrays["conv10/kernel"].shape[-1])
    x = g.node("Transpose", [INPUT_NAME], "nchw", perm=[0, 3, 1, 2])
    x = g.conv(x, "conv1", relu=True, stride=config.conv1_stride, padding=config.conv1_padding)

    def pool(x: str, after: str) -> str:
        name = "pool1" if after == "conv1" else f"pool{after[4:]}"
        return g.node(
            "MaxPool", [x], name, kernel_shape=[config.pool_size] * 2, strides=[config.pool_stride] * 2,
            ceil_mode=1 if config.pool_rounding == "ceil" else 0,
        )

    if "conv1" in config.pool_after:
        x = pool(x, "conv1")
    bypass = config.bypass_kinds()
    for spec in config.fire_specs():
        squeezed = g.conv(x, f"{spec.name}/squeeze1x1", relu=True)
        branches = []
        if spec.expand1x1:
            branches.append(g.conv(squeezed, f"{spec.name}/expand1x1", relu=True))
        if spec.expand3x3:
            branches.append(g.conv(squeezed, f"{spec.name}/expand3x3", relu=True, padding="same"))
        out = g.node("Concat", branches, f"{spec.name}_concat", axis=1) if len(branches) == 2 else branches[0]
        if bypass[spec.name] == "identity":
            out = g.node("Add", [out, x], f"{spec.name}_add")
        elif bypass[spec.name] == "conv":
            out = g.node("Add", [out, g.conv(x, f"{spec.name}_bypass", relu=False)], f"{spec.name}_add")
        x = out
        if spec.name in config.pool_after:
            x = pool(x, spec.name)
    if config.classifier_pad:
        p = config.classifier_pad
        x = g.node("Pad", [x, g.constant("conv10_pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))], "conv10_pad")
    x = g.conv(x, "conv10", relu=True)
    x = g.node("GlobalAveragePool", [x], "pool10")
    x = g.node("Flatten", [x], "scores" if include_softmax else OUTPUT_NAME, axis=1)
    if include_softmax:
        g.node("Softmax", [x], OUTPUT_NAME, axis=1)

    graph = helper.make_graph(
        g.nodes, "squeezenet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", height, width, channels])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", classes])],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="squeezekit")
    model.ir_version = 8  # readable by ONNX Runtime releases of the last years
    if metadata is not None:
        helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
    onnx.checker.check_model(model)
    return model
