"""Static int8 quantisation of an ONNX model with ONNX Runtime's own tools (no TensorFlow)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def quantize_onnx_int8(fp32_path: str | os.PathLike, output_path: str | os.PathLike, calibration: np.ndarray) -> Path:
    """QDQ int8 model: per-channel int8 weights, uint8 activations calibrated (min/max) on ``calibration``.

    ``calibration`` is a batch of preprocessed NHWC images. Unsigned activations suit a network whose
    activations are ReLU outputs; ONNX Runtime's x86 kernels also run u8 activations x s8 weights fastest.
    The final Softmax stays in float: quantised, probabilities would come in steps of 1/255.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import onnxruntime

    input_name = onnxruntime.InferenceSession(os.fspath(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._images = iter(calibration)

        def get_next(self):
            image = next(self._images, None)
            return None if image is None else {input_name: image[None].astype(np.float32)}

    output_path = Path(output_path)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(os.fspath(fp32_path), os.fspath(prepared), skip_symbolic_shape=True)
        softmax = [node.name for node in onnx.load(prepared).graph.node if node.op_type == "Softmax"]
        quantize_static(
            os.fspath(prepared), os.fspath(output_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=softmax,
        )
    return output_path
