"""Static int8 quantisation of an ONNX model without TensorFlow: by ONNX Runtime's own tools, or by NNCF
into an OpenVINO IR."""

from __future__ import annotations

import functools
import os
import platform
import tempfile
from pathlib import Path

import numpy as np


# What quantize_onnx_int8 writes, in words: part of the fingerprint of cached int8 models, so that a
# change of form rebuilds them.
INT8_FORM = "QDQ, per-channel int8 weights, uint8 activations, Concat inputs on their output's grid"


@functools.cache
def int8_weight_bits() -> int:
    """7 where ONNX Runtime's uint8 x int8 kernels on this CPU saturate with full-range int8 weights, else 8.

    x86 CPUs without VNNI multiply uint8 by int8 with ``vpmaddubsw``, which adds pairs of products into a
    signed 16-bit lane that saturates (255 * 127 * 2 > 32767): on such a CPU (AVX2, AVX-512 without VNNI)
    the pretrained v1.1 quantised with 8-bit weights agreed with float32 on 76.5 % of the check images, and
    with 7-bit weights (``reduce_range``) on 95.5 %. VNNI's ``vpdpbusd`` sums into 32 bits, and Arm's
    kernels do not have the problem. Where the flags cannot be read on x86, assume the old instructions.
    """
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return 8
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return 7
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return 8 if {"avx512_vnni", "avx_vnni"} & set(flags) else 7


def quantize_onnx_int8(fp32_path: str | os.PathLike, output_path: str | os.PathLike, calibration: np.ndarray,
                       weight_bits: int, *, share_concat: bool = True) -> Path:
    """QDQ int8 model: per-channel int8 weights, uint8 activations calibrated (min/max) on ``calibration``.

    ``calibration`` is a batch of preprocessed NHWC images. Unsigned activations suit a network whose
    activations are ReLU outputs; ONNX Runtime's x86 kernels also run u8 activations x s8 weights fastest.
    The final Softmax stays in float: quantised, probabilities would come in steps of 1/255.
    ``weight_bits`` 7 keeps the weights in [-64, 63] (ONNX Runtime's ``reduce_range``); callers pass
    ``int8_weight_bits()`` and record it in the model's metadata. ``share_concat=False`` keeps each
    Concat input's own calibrated range (ONNX Runtime's default; for comparison, see
    :func:`share_concat_quantization`).
    """
    if weight_bits not in (7, 8):
        raise ValueError(f"Expected weight_bits 7 or 8. Received: {weight_bits!r}")
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
            reduce_range=weight_bits == 7,
        )
    if share_concat:
        model = onnx.load(output_path)
        share_concat_quantization(model)
        onnx.save(model, output_path)
    return output_path


def share_concat_quantization(model) -> int:
    """Give every quantised input of a Concat its output's scale and zero point, as TFLite requires.

    ONNX Runtime fuses DequantizeLinear -> Concat -> QuantizeLinear into QLinearConcat, which requantises
    each input whose parameters differ from the output's through a byte lookup table, and copies those
    that match. A Fire module's concatenation of its expand outputs cost twice as much with its own
    calibrated ranges as with the output's (benchmarks/int8_concat.py); the input with the narrower
    range is stored a little more coarsely. Returns how many Concat inputs changed.
    """
    producers = {output: node for node in model.graph.node for output in node.output}
    consumers: dict = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    changed = 0
    for concat in (node for node in model.graph.node if node.op_type == "Concat"):
        after = consumers.get(concat.output[0], [])
        if len(after) != 1 or after[0].op_type != "QuantizeLinear":
            continue
        scale, zero_point = after[0].input[1], after[0].input[2]
        for name in concat.input:
            dequantize = producers.get(name)
            quantize = producers.get(dequantize.input[0]) if dequantize is not None else None
            if dequantize is None or dequantize.op_type != "DequantizeLinear" or quantize is None \
                    or quantize.op_type != "QuantizeLinear" or len(consumers[quantize.output[0]]) != 1:
                continue
            for node in (quantize, dequantize):
                node.input[1], node.input[2] = scale, zero_point
            changed += 1
    used = {name for node in model.graph.node for name in node.input}
    unused = [initializer for initializer in model.graph.initializer if initializer.name not in used]
    for initializer in unused:  # the inputs' own scales and zero points
        model.graph.initializer.remove(initializer)
    return changed


def openvino_model(onnx_path: str | os.PathLike, output_path: str | os.PathLike,
                   calibration: np.ndarray | None = None) -> Path:
    """The ONNX model as an OpenVINO IR (``output_path`` ``.xml`` and its ``.bin``): float32, or int8 by
    NNCF's post-training quantisation calibrated on ``calibration`` (preprocessed NHWC images).

    squeezekit's metadata moves from the ONNX model's properties into the IR's rt_info. Weights stay
    float32 (``save_model`` would halve them to float16 by default). NNCF's default overflow fix (7-bit
    weights in the first layer) is kept: on an AVX2 machine without VNNI the int8 v1.1 agreed with float32 on
    94.1 % of sample-1000 with it, and on 92.5 % with 7-bit weights everywhere.
    """
    import onnx
    import openvino

    model = openvino.convert_model(os.fspath(onnx_path))
    properties = {p.key: p.value for p in onnx.load(os.fspath(onnx_path), load_external_data=False).metadata_props}
    if calibration is not None:
        import nncf

        model = nncf.quantize(model, nncf.Dataset([image[None].astype(np.float32) for image in calibration]),
                              subset_size=len(calibration), preset=nncf.QuantizationPreset.PERFORMANCE)
    if "squeezekit" in properties:
        model.set_rt_info(properties["squeezekit"], ["squeezekit"])
    output_path = Path(output_path)
    openvino.save_model(model, os.fspath(output_path), compress_to_fp16=False)
    return output_path
