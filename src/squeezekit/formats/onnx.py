"""Write a SqueezeNet as an ONNX graph by walking its plan: numpy and ``onnx`` only.

The TensorFlow-free runtime uses this to produce its own artefacts from converted pretrained weights,
and ``squeezekit export --format onnx`` uses it for every squeezekit model whatever its Keras backend.
Writing the graph from the plan (rather than tracing a TensorFlow graph with tf2onnx) keeps it small and
exactly the architecture: ONNX's MaxPool has Caffe's ceil rounding built in, batch normalisation is
folded into the convolutions, dropout disappears.

The graph takes NHWC float32 images (as LiteRT and Keras do; a single Transpose moves them to ONNX's
NCHW) with a free batch dimension, and returns class probabilities (or scores). Node outputs carry the
plan's op names, so a value in the graph can be found by its layer name.
"""

from __future__ import annotations

import json

import numpy as np

from squeezekit import graph
from squeezekit.config import SqueezeNetConfig

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
METADATA_KEY = "squeezekit"


class _Writer:
    def __init__(self, arrays: dict[str, np.ndarray]):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.arrays = graph.fold_batch_norm(arrays)
        self.nodes, self.initializers = [], []

    def constant(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def conv(self, x: str, op: graph.Conv) -> str:
        """A Keras Conv2D (plus its batch norm, folded) as ONNX Conv, weights HWIO -> OIHW."""
        weight = graph.hwio_to_oihw(self.arrays[f"{op.name}/kernel"].astype(np.float32))
        if weight.shape != op.kernel_shape:
            raise ValueError(f"layer {op.name!r} has weights of shape {weight.shape}, the architecture needs {op.kernel_shape}")
        bias = self.arrays.get(f"{op.name}/bias", np.zeros(op.filters, np.float32)).astype(np.float32)
        # Keras' "same" pads the extra pixel (even kernels, strides) at the end, as ONNX's SAME_UPPER does.
        geometry = {"auto_pad": "SAME_UPPER"} if op.padding == "same" else {"pads": [0, 0, 0, 0]}
        y = self.node(
            "Conv", [x, self.constant(f"{op.name}/weight", weight), self.constant(f"{op.name}/bias", bias)],
            f"{op.name}/conv" if op.relu else op.name, kernel_shape=[op.kernel] * 2, strides=[op.stride] * 2, **geometry,
        )
        return self.node("Relu", [y], op.name) if op.relu else y

    def fire(self, x: str, op: graph.Fire) -> str:
        squeezed = self.conv(x, op.squeeze)
        branches = [self.conv(squeezed, expand) for expand in (op.expand1x1, op.expand3x3) if expand is not None]
        if len(branches) == 1:
            return self.node("Identity", branches, op.name)
        return self.node("Concat", branches, op.name, axis=1)

    def op(self, op: graph.Op, inputs: list[str], *, include_softmax: bool) -> str:
        if isinstance(op, graph.Conv):
            return self.conv(inputs[0], op)
        if isinstance(op, graph.Fire):
            return self.fire(inputs[0], op)
        if isinstance(op, graph.MaxPool):
            return self.node("MaxPool", inputs, op.name, kernel_shape=[op.size] * 2, strides=[op.stride] * 2,
                             ceil_mode=1 if op.rounding == "ceil" else 0)
        if isinstance(op, graph.Add):
            return self.node("Add", inputs, op.name)
        if isinstance(op, graph.Pad):
            p = op.pad
            return self.node("Pad", [inputs[0], self.constant(f"{op.name}/pads", np.array([0, 0, p, p, 0, 0, p, p], np.int64))],
                             op.name)
        if isinstance(op, graph.Dropout):
            return inputs[0]  # inference: dropout is the identity
        if isinstance(op, graph.GlobalPool):
            pooled = self.node("GlobalAveragePool" if op.mode == "avg" else "GlobalMaxPool", inputs, op.name)
            return self.node("Flatten", [pooled], OUTPUT_NAME if not include_softmax else "scores", axis=1)
        if isinstance(op, graph.Activation):
            if op.function != "softmax":
                raise ValueError(f"ONNX export supports classifier_activation 'softmax' or None. Received: {op.function!r}")
            return self.node("Softmax", inputs, OUTPUT_NAME, axis=1)
        raise TypeError(f"no ONNX nodes for plan op {op!r}")


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

    classes = int(arrays[f"{graph.CLASSIFIER}/kernel"].shape[-1])
    plan = graph.build_plan(config, classes, input_size=input_size, channels=channels,
                            activation="softmax" if include_softmax else None)
    writer = _Writer(arrays)
    values = {plan.ops[0].name: writer.node("Transpose", [INPUT_NAME], "nchw", perm=[0, 3, 1, 2])}
    for op in plan.ops[1:]:
        values[op.name] = writer.op(op, [values[i] for i in op.inputs], include_softmax=include_softmax)

    height, width = input_size if input_size else ("height", "width")
    model_graph = helper.make_graph(
        writer.nodes, "squeezenet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", height, width, channels])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", classes])],
        initializer=writer.initializers,
    )
    model = helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="squeezekit")
    model.ir_version = 8  # readable by ONNX Runtime releases of the last years
    if metadata is not None:
        helper.set_model_props(model, {METADATA_KEY: json.dumps(metadata)})
    onnx.checker.check_model(model)
    return model
