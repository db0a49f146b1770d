"""int8 ONNX graphs: a Concat's quantised inputs share its output's scale and zero point."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from squeezekit.runtime.quantize import share_concat_quantization

SCALES = {"a": 0.02, "b": 0.05, "out": 0.05}  # input a's calibrated range is narrower than the output's


def _expand_concat_graph() -> onnx.ModelProto:
    """a, b -> Q -> DQ -> Concat -> Q -> DQ: a Fire module's expand outputs joined, as ONNX Runtime writes them."""
    nodes, initializers = [], []
    for name, scale in SCALES.items():
        initializers += [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
                         numpy_helper.from_array(np.array(0, np.uint8), f"{name}_zero_point")]
    for name in ("a", "b"):
        nodes += [helper.make_node("QuantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"], [f"{name}_q"]),
                  helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale", f"{name}_zero_point"],
                                   [f"{name}_dq"])]
    nodes += [helper.make_node("Concat", ["a_dq", "b_dq"], ["joined"], axis=1),
              helper.make_node("QuantizeLinear", ["joined", "out_scale", "out_zero_point"], ["joined_q"]),
              helper.make_node("DequantizeLinear", ["joined_q", "out_scale", "out_zero_point"], ["y"])]
    graph = helper.make_graph(
        nodes, "expand", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 64]) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"a": a, "b": b})[0]


def test_concat_inputs_are_quantised_once_with_the_output_parameters():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 2.5, (1, 64)).astype(np.float32)  # within both ranges: a's own rounding is finer
    b = rng.uniform(0, 12, (1, 64)).astype(np.float32)
    model = _expand_concat_graph()
    # Independent reference: one rounding of the joined floats to the output's grid (round half to even,
    # as QuantizeLinear does), which is what TFLite's shared-parameter concatenation computes.
    expected = np.clip(np.round(np.concatenate([a, b], axis=1) / SCALES["out"]), 0, 255) * SCALES["out"]
    before = _run(model, a, b)
    assert not np.allclose(before, expected, atol=1e-6)  # a rounded twice: to its grid, then the output's

    assert share_concat_quantization(model) == 2
    np.testing.assert_allclose(_run(model, a, b), expected, atol=1e-6)
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            assert node.input[1:] == ["out_scale", "out_zero_point"]
    assert {i.name for i in model.graph.initializer} == {"out_scale", "out_zero_point"}  # a's and b's are gone
    onnx.checker.check_model(model)


def test_a_quantised_tensor_read_elsewhere_keeps_its_parameters():
    model = _expand_concat_graph()
    # a's quantised bytes also feed another DequantizeLinear: changing a's Q would corrupt that reader.
    model.graph.node.append(helper.make_node("DequantizeLinear", ["a_q", "a_scale", "a_zero_point"], ["a_other"]))
    model.graph.output.append(helper.make_tensor_value_info("a_other", TensorProto.FLOAT, [1, 64]))
    assert share_concat_quantization(model) == 1
    quantize_a = next(node for node in model.graph.node if node.output == ["a_q"])
    assert quantize_a.input[1:] == ["a_scale", "a_zero_point"]
