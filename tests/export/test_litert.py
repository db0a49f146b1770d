"""LiteRT export of the pretrained SqueezeNet v1.1: int8, float16 and dynamic range, each checked in LiteRT."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.data

CONVOLUTIONS = 26  # SqueezeNet v1.1: conv1, 8 Fire modules x 3, conv10


def _tensors(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    io = {d["index"] for d in interpreter.get_input_details() + interpreter.get_output_details()}
    return interpreter.get_tensor_details(), io


def _conv_weights(tensors):
    """4-D tensors whose first axis is not the batch of 1: the (out, h, w, in) convolution kernels."""
    return [t for t in tensors if len(t["shape"]) == 4 and t["shape"][0] != 1]


def test_int8_python_api_small_verified_self_describing_file(photos, tmp_path):
    """export_model(..., "litert", quantize="int8") writes a checked full-integer file with its metadata inside."""
    import squeezekit
    from squeezekit.export import export_model
    from squeezekit.runtime.classifier import Classifier

    output = tmp_path / "m.tflite"
    result = export_model("squeezenet1_1", "litert", quantize="int8", calibration=photos.easy, output=output,
                          calibration_count=16)

    assert result.passed, result.check.describe()
    assert (result.path, result.format, result.quantize) == (output, "litert", "int8")
    assert output.is_file() and result.size_bytes == output.stat().st_size <= 1_400_000
    assert result.check.n == 16 and result.check.threshold == pytest.approx(0.93)
    assert 0.93 <= result.check.top1_agreement <= 1.0 and 0.0 <= result.check.max_probability_difference < 1.0

    from squeezekit.formats.litert_metadata import read_litert_metadata

    assert result.metadata_path is None and not (tmp_path / "m.tflite.json").exists()
    metadata = read_litert_metadata(output)
    assert len(metadata["labels"]) == 1000 and metadata["label_set"] == "imagenet-1k"
    crop = metadata["preprocessing"]["crop"]
    assert {"resize", "crop", "channel_order", "mean", "scale"} <= set(metadata["preprocessing"])
    assert metadata["squeezekit_version"] == squeezekit.__version__
    extra = metadata["extra"]
    assert extra["source_model"] == "squeezenet1_1" and extra["squeezekit_version"] == squeezekit.__version__
    assert extra["input_size"] == [crop, crop, 3]
    assert (extra["format"], extra["quantize"], extra["outputs"]) == ("litert", "int8", "scores")

    # Full integer: int8 kernels and int8 activations; only the model's input and output are float32.
    tensors, io = _tensors(output)
    weights = _conv_weights(tensors)
    assert len(weights) == CONVOLUTIONS and all(t["dtype"] == np.int8 for t in weights)
    floats = {t["index"] for t in tensors if t["dtype"] in (np.float32, np.float16)}
    assert floats == io, [t["name"] for t in tensors if t["index"] in floats - io]
    assert sum(t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][0] == 1 for t in tensors) >= CONVOLUTIONS

    # The TensorFlow-free runtime opens it from the file alone and mostly agrees with Keras.
    classifier = Classifier.load(output)
    assert classifier.input_size == (crop, crop)
    results = list(classifier.classify(sorted(photos.easy.iterdir()), top_k=3))
    assert all(r.error is None for r in results)
    for r in results:
        assert sum(p for *_, p in r.top) <= 1.0 + 1e-5 and r.top[0][2] > r.top[1][2] >= 0.0  # softmax applied
    same = sum(r.top[0][0] == photos.easy_top1[r.file.rsplit("/", 1)[-1]] for r in results)
    assert same >= 15, f"{same}/16 photos with the same top-1 as Keras"


def test_float16_halves_the_file_and_agrees(photos, tmp_path, capsys):
    """--quantize float16 stores float16 kernels and matches the Keras model on every photo."""
    from squeezekit.cli.main import main

    output = tmp_path / "m.float16.tflite"
    status = main(["export", "squeezenet1_1", "--format", "litert", "--quantize", "float16", "--calibration",
                   str(photos.easy), "--calibration-count", "16", "-o", str(output), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["check"]["passed"], report
    assert report["check"]["top1_agreement"] == 1.0 and report["check"]["max_probability_difference"] < 1e-3
    assert report["metadata"] is None
    assert 2_000_000 < output.stat().st_size < 3_000_000  # float32 is ~4.9 MB
    tensors, _ = _tensors(output)
    # float16 kernels, each dequantised to float32 by the interpreter at load time.
    assert sum(t["dtype"] == np.float16 for t in _conv_weights(tensors)) == CONVOLUTIONS
    from squeezekit.formats.litert_metadata import read_litert_metadata

    metadata = read_litert_metadata(output)
    assert metadata["extra"]["quantize"] == "float16" and metadata["extra"]["outputs"] == "probabilities"


def test_dynamic_range_int8_weights_float_activations(photos, tmp_path, capsys):
    """--quantize dynamic stores int8 kernels, keeps float activations, and passes its 98 % check."""
    from squeezekit.cli.main import main

    output = tmp_path / "m.dynamic.tflite"
    status = main(["export", "squeezenet1_1", "--format", "litert", "--quantize", "dynamic", "--calibration",
                   str(photos.easy), "--calibration-count", "16", "-o", str(output), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["check"]["passed"], report
    assert report["check"]["threshold"] == pytest.approx(0.98) and report["check"]["n"] == 16
    assert report["size_bytes"] == output.stat().st_size <= 1_600_000
    tensors, io = _tensors(output)
    weights = _conv_weights(tensors)
    assert len(weights) == CONVOLUTIONS and all(t["dtype"] == np.int8 for t in weights)
    activations = [t for t in tensors if len(t["shape"]) == 4 and t["shape"][0] == 1 and t["index"] not in io]
    assert activations and all(t["dtype"] == np.float32 for t in activations)
