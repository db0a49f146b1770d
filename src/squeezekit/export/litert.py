"""LiteRT (TensorFlow Lite) export through Keras' own ``model.export(format="litert")``."""

from __future__ import annotations

import os

import numpy as np


def export_litert(model, path: str | os.PathLike, *, quantize: str, calibration: np.ndarray | None,
                  input_size: tuple[int, int], integer_io: bool = False) -> str:
    """Write ``model`` as a ``.tflite`` file.

    ``quantize``: "none" (float32), "float16" (float16 weights), "dynamic" (int8 weights, float
    activations) or "int8" (int8 weights and activations everywhere, calibrated on ``calibration``,
    float32 input and output so callers need not know the scales). An int8 model ends at the pooled
    class scores and the runtime applies the softmax: an int8 softmax would give probabilities in steps
    of 1/256.

    ``integer_io`` (int8 only) makes the input and output int8 too, with batch 1, as microcontrollers
    run it (TensorFlow Lite Micro).

    Returns "probabilities" or "scores": what the file outputs.
    """
    import keras
    import tensorflow as tf

    options: dict = {}
    if quantize == "float16":
        options = {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    elif quantize == "dynamic":
        options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    elif quantize == "int8":
        if calibration is None or len(calibration) == 0:
            raise ValueError("int8 quantisation needs calibration images")

        def representative_dataset():
            for image in calibration:
                yield [image[None].astype(np.float32)]

        options = {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": representative_dataset,
            # Refuse to fall back silently to float kernels for any op.
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
        }
        if integer_io:
            options.update(inference_input_type=tf.int8, inference_output_type=tf.int8)
        if model.layers[-1].name == "predictions":
            model = keras.Model(model.inputs, model.get_layer("pool10").output, name=model.name)
    elif quantize != "none":
        raise ValueError(f"Unknown quantisation {quantize!r}")
    batch = 1 if integer_io else None
    signature = [keras.InputSpec(shape=(batch, *input_size, model.input_shape[-1]), dtype="float32")]
    model.export(os.fspath(path), format="litert", input_signature=signature, verbose=False, **options)
    return "scores" if model.layers[-1].name == "pool10" else "probabilities"


# LiteRT aborts the whole process (SIGABRT in allocate_tensors, no message) on some int8 models: seen on
# the cifar recipe's architecture with complex bypass. Load it once in a child process first, so that
# the export fails with a message instead of taking the command with it.
_LITERT_PROBE = "import sys; from ai_edge_litert.interpreter import Interpreter; Interpreter(model_path=sys.argv[1]).allocate_tensors()"


def check_litert_loads(path: str | os.PathLike) -> None:
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", _LITERT_PROBE, os.fspath(path)], capture_output=True, timeout=600)
    if probe.returncode < 0:
        from squeezekit.errors import ExportError

        raise ExportError(f"LiteRT crashes while loading the exported model (signal {-probe.returncode}, in "
                           "allocate_tensors); nothing was written. Export this model to ONNX instead "
                           "(--format onnx), which runs it")
