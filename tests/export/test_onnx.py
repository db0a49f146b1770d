"""ONNX export: float32 with its metadata inside the file, and ONNX Runtime static QDQ int8."""

from __future__ import annotations

import json

import pytest

from squeezekit.cli.main import main

pytestmark = pytest.mark.data


def _stored_metadata(path) -> dict:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return json.loads(session.get_modelmeta().custom_metadata_map["squeezekit"])


def test_float32_cli_json_metadata_inside_exact_check(photos, tmp_path, capsys):
    """`squeezekit export ... --format onnx --json`: exit 0, metadata in the .onnx, outputs equal to Keras."""
    import squeezekit
    from squeezekit.runtime.classifier import Classifier

    output = tmp_path / "m.onnx"
    status = main(["export", "squeezenet1_1", "--format", "onnx", "--calibration", str(photos.easy),
                   "--calibration-count", "16", "-o", str(output), "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(captured.out)
    assert (report["path"], report["format"], report["quantize"]) == (str(output), "onnx", "none")
    assert report["metadata"] is None and not (tmp_path / "m.onnx.json").exists()  # it is inside the file
    assert report["size_bytes"] == output.stat().st_size
    check = report["check"]
    assert check["passed"] and check["n"] == 16 and check["threshold"] == pytest.approx(0.999)
    assert check["top1_agreement"] == 1.0 and check["max_probability_difference"] < 1e-4

    metadata = _stored_metadata(output)
    assert metadata["format"] == "squeezekit-model-metadata" and len(metadata["labels"]) == 1000
    crop = metadata["preprocessing"]["crop"]
    assert metadata["squeezekit_version"] == squeezekit.__version__
    extra = metadata["extra"]
    assert extra["source_model"] == "squeezenet1_1" and extra["input_size"] == [crop, crop, 3]
    assert extra["squeezekit_version"] == squeezekit.__version__ and extra["format"] == "onnx"

    classifier = Classifier.load(output)
    results = list(classifier.classify(sorted(photos.easy.iterdir()), top_k=1))
    assert {r.file.rsplit("/", 1)[-1]: r.top[0][0] for r in results} == photos.easy_top1


def test_int8_qdq_with_float_softmax(photos, tmp_path):
    """--quantize int8 gives a QDQ graph with int8 kernels, a float Softmax output and the metadata kept."""
    import onnx
    from onnx import numpy_helper

    from squeezekit.export import export_model

    output = tmp_path / "m.int8.onnx"
    result = export_model("squeezenet1_1", "onnx", quantize="int8", calibration=photos.easy, output=output,
                          calibration_count=16)
    assert result.passed, result.check.describe()
    assert result.path == output and result.check.threshold == pytest.approx(0.93)
    assert output.stat().st_size <= 1_400_000

    model = onnx.load(str(output))
    nodes = model.graph.node
    ops = [n.op_type for n in nodes]
    assert ops.count("Conv") == 26 and ops.count("QuantizeLinear") >= 26 and ops.count("DequantizeLinear") >= 52
    initializers = {i.name: i for i in model.graph.initializer}
    conv_weights = [initializers[n.input[0]] for n in nodes if n.op_type == "DequantizeLinear"
                    and n.input[0] in initializers and len(initializers[n.input[0]].dims) == 4]
    assert len(conv_weights) == 26 and all(numpy_helper.to_array(w).dtype.name == "int8" for w in conv_weights)

    # Each Fire module's Concat reads bytes already on its output's grid, so ONNX Runtime copies them.
    producers = {output: n for n in nodes for output in n.output}
    for concat in (n for n in nodes if n.op_type == "Concat"):
        (after,) = [n for n in nodes if concat.output[0] in n.input]
        assert {tuple(producers[name].input[1:]) for name in concat.input} == {tuple(after.input[1:])}

    # The Softmax stays float: it produces the graph output itself and nothing quantises it.
    (softmax,) = [n for n in nodes if n.op_type == "Softmax"]
    assert [o.name for o in model.graph.output] == list(softmax.output)
    assert not [n for n in nodes if set(n.input) & set(softmax.output)]
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT

    metadata = _stored_metadata(output)
    assert len(metadata["labels"]) == 1000 and metadata["extra"]["quantize"] == "int8"
