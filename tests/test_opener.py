"""One opener for every command: the same files accepted, the same refusals, the same answers.

A small random SqueezeNet is written as .keras, .onnx, .sqz and .tflite; ``evaluate`` must give each
the top-1 that ``predict`` gives on the same files, and the float formats must agree with each other.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from compression_helpers import SMALL, random_arrays, small_metadata
from squeezekit.runtime.sources import identify_model
from small_model import write_images, write_small_keras

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """The same small model in four formats, and a labelled folder of 24 images."""
    from squeezekit.compression.api import compress_arrays
    from squeezekit.formats.onnx import build_onnx_model
    from squeezekit.formats.sqz import write_sqz

    root = tmp_path_factory.mktemp("formats")
    arrays = random_arrays(SMALL, classes=3, seed=4)
    metadata = dict(small_metadata(), extra={"config": SMALL.to_dict()})
    files = {"keras": write_small_keras(root / "small.keras", seed=4), "onnx": root / "small.onnx",
             "sqz": root / "small.sqz"}
    files["onnx"].write_bytes(build_onnx_model(SMALL, arrays, input_size=(32, 32), metadata=metadata).SerializeToString())
    write_sqz(files["sqz"], SMALL.to_dict(), metadata, compress_arrays(SMALL, arrays, bits=8))
    data = write_images(root / "data")
    from squeezekit.export import export_model

    files["tflite"] = export_model(str(files["keras"]), "litert", calibration=data, output=root / "small.tflite").path
    return files, data


def _predict_top1(run_cli, model, data) -> float:
    status, out, err = run_cli("predict", data, "--model", model, "--json")
    assert status == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 24
    return float(np.mean([row["predictions"][0]["id"] == row["file"].split("/")[-2] for row in rows]))


def test_evaluate_agrees_with_predict_in_every_format(model_files, run_cli):
    files, data = model_files
    top1 = {}
    for kind, path in files.items():
        status, out, err = run_cli("evaluate", path, data, "--json")
        assert status == 0, f"{kind}: {err}"
        top1[kind] = json.loads(out)["top1"]
        assert top1[kind] == pytest.approx(_predict_top1(run_cli, path, data)), kind
    # The float formats are the same model.
    assert top1["keras"] == top1["onnx"] == top1["tflite"]
    # 8-bit sharing changes at most a few of the 24 images.
    assert abs(top1["sqz"] - top1["onnx"]) <= 3 / 24


def test_the_same_model_from_every_opener_gives_the_same_probabilities(model_files):
    from squeezekit.opener import open_model

    files, _ = model_files
    batch = np.random.default_rng(1).uniform(-100, 100, (4, 32, 32, 3)).astype(np.float32)
    reference = open_model(files["keras"]).predict(batch)
    np.testing.assert_allclose(open_model(files["onnx"]).predict(batch), reference, atol=1e-5)
    np.testing.assert_allclose(open_model(files["tflite"]).predict(batch), reference, atol=1e-5)
    # .sqz rebuilt as a Keras model (export's and training's view) equals the .sqz run by the runtime.
    rebuilt = open_model(files["sqz"], "keras").model
    np.testing.assert_allclose(np.asarray(rebuilt.predict_on_batch(batch)), open_model(files["sqz"]).predict(batch),
                               atol=1e-5)


@pytest.mark.parametrize("command, kind", [("export", "onnx"), ("export", "tflite"), ("compress", "onnx"),
                                           ("bench", "tflite")])
def test_commands_refuse_formats_they_cannot_use_in_one_wording(model_files, run_cli, command, kind):
    files, _ = model_files
    argv = [command, "--model", files[kind]] if command == "bench" else [command, files[kind]]
    if command == "export":
        argv += ["--format", "litert"]
    status, _, err = run_cli(*argv)
    assert status == 2
    assert f"squeezekit {command} takes a pretrained name, a .keras file or a .sqz file, not a .{kind} file" in err


@pytest.mark.parametrize("make, fragment", [
    (lambda tmp: tmp / "missing.onnx", "no such model file or folder, and not a pretrained name (squeezenet1_0"),
    (lambda tmp: tmp, "a folder, but not a SavedModel"),
    (lambda tmp: (tmp / "model.pt").write_bytes(b"x") and tmp / "model.pt", "unknown model format (.pt)"),
])
def test_identification_errors(tmp_path, make, fragment):
    with pytest.raises(ValueError) as caught:
        identify_model(make(tmp_path))
    message = str(caught.value)
    assert fragment in message
    assert message.count(str(tmp_path)) == 1  # the path is named once


def test_a_file_wins_over_a_pretrained_name(tmp_path, monkeypatch):
    (tmp_path / "squeezenet1_1").mkdir()
    (tmp_path / "squeezenet1_1" / "saved_model.pb").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert identify_model("squeezenet1_1").kind == "saved_model"
    assert identify_model("squeezenet1_0").kind == "pretrained"
