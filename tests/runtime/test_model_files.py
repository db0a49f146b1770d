"""Model files `squeezekit predict` cannot use, and usage errors: one line naming the file, exit status 2.

Also a LiteRT model with its metadata in a JSON file beside it, end to end. These run ``main()`` in
process (capturing the file descriptors, so that messages of the C++ runtimes count too); the
subprocess tests in test_predict_cli.py cover the process as a whole.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from litert_helpers import tiny_tflite as tiny_tflite_bytes
from squeezekit.cli.main import main
from squeezekit.config import CAFFE_PREPROCESSING
from squeezekit.formats.metadata import ModelMetadata, sidecar_path

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _predict(capfd, *args) -> tuple[int, str, str]:
    status = main(["predict", *map(str, args)])
    out, err = capfd.readouterr()
    return status, out, err


def _assert_one_line_error(status, out, err, *names):
    assert status == 2, (status, out, err)
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("squeezekit predict: error: "), lines[0]
    for name in names:
        assert str(name) in lines[0], lines[0]


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(path)
    return path


# --- usage errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, words",
    [
        (["--top-k", "0"], "--top-k"),
        (["--batch-size", "0"], "--batch-size"),
        (["--threads", "0"], "--threads"),
        (["--model", "does-not-exist.onnx"], "does-not-exist.onnx"),
        (["--model", "squeezenet9_9"], "squeezenet9_9"),
        (["--model", "model.sqz"], "model.sqz"),
        (["--model", "a-folder"], "a-folder"),
    ],
    ids=["top-k-0", "batch-size-0", "threads-0", "missing-model-file", "unknown-pretrained-name", "sqz",
         "model-is-a-folder"],
)
def test_usage_errors(options, words, image, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "model.sqz").write_bytes(b"SQZ\x00")
    _assert_one_line_error(*_predict(capfd, image, *options), words)


def test_no_input_found_is_a_usage_error(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    status, out, err = _predict(capfd, "missing.jpg", "empty", "*.png", "--model", "never-loaded.onnx")
    _assert_one_line_error(status, out, err, "missing.jpg", "empty", "*.png")


def test_no_arguments_is_a_usage_error(capfd):
    try:
        status, out, err = _predict(capfd)
    except SystemExit as exit_info:  # argparse itself (usage and message), when IMAGE_OR_FOLDER is required
        status, out, err = exit_info.code, *capfd.readouterr()
        assert status == 2 and "Traceback" not in err
    else:
        _assert_one_line_error(status, out, err, "no input")


# --- model files that cannot be used ------------------------------------------------------------------


def _onnx_model(*, input_shape=("batch", 227, 227, 3), metadata: str | None = None, path):
    """A valid ONNX model that is not squeezekit's: one Identity node on a 4-D input."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(input_shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata is not None:
        helper.set_model_props(model, {"squeezekit": metadata})
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def _metadata(classes: int, outputs: str | None = None) -> ModelMetadata:
    labels = tuple((f"c{i}", f"class {i}") for i in range(classes))
    return ModelMetadata(labels=labels, preprocessing=CAFFE_PREPROCESSING, source="test",
                         extra={"outputs": outputs} if outputs else {})


def _write_sidecar(model_path, metadata: ModelMetadata):
    sidecar_path(model_path).write_text(json.dumps(metadata.to_dict()))


@pytest.fixture
def tiny_tflite(tmp_path):
    pytest.importorskip("ai_edge_litert")
    path = tmp_path / "mean.tflite"
    path.write_bytes(tiny_tflite_bytes())
    return path


def _unusable_model(kind: str, folder, artefacts, tiny_tflite_bytes) -> tuple:
    """Make a model file of this kind; returns (path, words its error must contain)."""
    if kind == "text-as-onnx":
        path = folder / "notes.onnx"
        path.write_text("this is a text file, not a model\n")
        return path, "not a loadable ONNX model"
    if kind in ("truncated-onnx-header", "truncated-onnx-half"):
        data = artefacts.float32.read_bytes()
        path = folder / f"{kind}.onnx"
        path.write_bytes(data[:100] if kind.endswith("header") else data[: len(data) // 2])
        return path, "not a loadable ONNX model"
    if kind == "zero-bytes-onnx":
        path = folder / "empty.onnx"
        path.write_bytes(b"")
        return path, "not a loadable ONNX model"
    if kind == "foreign-onnx":
        return _onnx_model(path=folder / "foreign.onnx"), "no squeezekit metadata"
    if kind == "foreign-onnx-broken-sidecar":
        path = _onnx_model(path=folder / "foreign.onnx")
        sidecar_path(path).write_text("{ not json")
        return path, "model metadata is not valid JSON"
    if kind == "onnx-metadata-not-json":
        return _onnx_model(path=folder / "meta.onnx", metadata="{ not json"), "squeezekit metadata in the model is not valid JSON"
    if kind == "onnx-metadata-without-labels":
        metadata = json.dumps({"format": "squeezekit-model-metadata", "version": 1})
        return _onnx_model(path=folder / "meta.onnx", metadata=metadata), "invalid squeezekit metadata in the model: field 'labels' is missing"
    if kind == "onnx-output-not-classes":
        path = _onnx_model(path=folder / "identity.onnx")
        _write_sidecar(path, _metadata(10))
        return path, "10 classes"
    if kind == "onnx-input-not-nhwc":
        path = _onnx_model(path=folder / "nchw.onnx", input_shape=("batch", 3, 227, 227))
        _write_sidecar(path, _metadata(10))
        return path, "(batch, 227, 227, 3)"
    if kind == "text-as-tflite":
        path = folder / "notes.tflite"
        path.write_text("this is a text file, not a model\n")
        return path, "not a loadable LiteRT model"
    if kind == "zero-bytes-tflite":
        path = folder / "empty.tflite"
        path.write_bytes(b"")
        return path, "not a loadable LiteRT model"
    if kind == "truncated-tflite":
        path = folder / "truncated.tflite"
        path.write_bytes(tiny_tflite_bytes[: len(tiny_tflite_bytes) * 2 // 3])
        return path, "not a loadable LiteRT model"
    if kind == "foreign-tflite":
        path = folder / "foreign.tflite"
        path.write_bytes(tiny_tflite_bytes)
        return path, "no squeezekit metadata"
    if kind == "tflite-classes-differ-from-labels":
        path = folder / "mean.tflite"
        path.write_bytes(tiny_tflite_bytes)
        _write_sidecar(path, _metadata(1000))
        return path, "1000 classes"
    if kind == "unknown-suffix":
        path = folder / "model.pt"
        _onnx_model(path=path)  # a valid ONNX model under a suffix the runtime does not know
        return path, "unknown model format"
    raise AssertionError(kind)


MODEL_KINDS = ["text-as-onnx", "truncated-onnx-header", "truncated-onnx-half", "zero-bytes-onnx", "foreign-onnx",
               "foreign-onnx-broken-sidecar", "onnx-metadata-not-json", "onnx-metadata-without-labels",
               "onnx-output-not-classes", "onnx-input-not-nhwc", "text-as-tflite", "zero-bytes-tflite",
               "truncated-tflite", "foreign-tflite", "tflite-classes-differ-from-labels", "unknown-suffix"]


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_unusable_model_file_is_one_line_naming_it(kind, image, tmp_path, capfd, request):
    if "tflite" in kind:
        pytest.importorskip("ai_edge_litert")
    # Only the kinds cut from the real pretrained artefact need it (and the data to build it).
    artefacts = request.getfixturevalue("artefacts") if "truncated-onnx" in kind else None
    path, words = _unusable_model(kind, tmp_path, artefacts, tiny_tflite_bytes() if "tflite" in kind else b"")
    status, out, err = _predict(capfd, image, "--model", path)
    _assert_one_line_error(status, out, err, path, words)


def test_truncated_model_in_a_subprocess(squeezekit_cli, artefacts, photos, tmp_path):
    data = artefacts.float32.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    proc = squeezekit_cli("predict", photos["barn"], "--model", "cut.onnx", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.startswith("squeezekit predict: error: cut.onnx: not a loadable ONNX model")
    assert len(proc.stderr.splitlines()) == 1, proc.stderr


# --- a LiteRT model end to end ----------------------------------------------------------------------


@pytest.mark.parametrize("outputs", ["scores", None])
def test_litert_model_with_metadata_beside_it(outputs, tiny_tflite, tmp_path, capfd, parse_json_lines):
    # The model returns the mean of each preprocessed channel (BGR, Caffe mean subtracted), so a pure
    # red, green or blue photo has its own colour as top class.
    labels = (("b", "blue"), ("g", "green"), ("r", "red"))
    _write_sidecar(tiny_tflite, ModelMetadata(labels=labels, preprocessing=CAFFE_PREPROCESSING,
                                              extra={"outputs": outputs} if outputs else {}))
    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "red-too": (250, 10, 10)}
    for name, rgb in colours.items():
        Image.new("RGB", (300, 240), rgb).save(tmp_path / f"{name}.png")
    files = [tmp_path / f"{name}.png" for name in colours]
    # Batches of 3 and then 1 make the interpreter resize its input twice.
    status, out, err = _predict(capfd, *files, "--model", tiny_tflite, "--batch-size", "3", "--top-k", "3", "--json")
    assert status == 0, err
    rows = parse_json_lines(out)
    for name, file in zip(colours, files):
        predictions = rows[str(file)]["predictions"]
        assert predictions[0]["label"] == name.split("-")[0], predictions
        total = sum(p["probability"] for p in predictions)
        if outputs == "scores":  # class scores: the runtime applies the softmax
            assert total == pytest.approx(1, abs=1e-5)
        else:  # the model's outputs are taken as they are
            assert total != pytest.approx(1, abs=1e-3)
    # Without the metadata file it is a foreign model.
    sidecar_path(tiny_tflite).unlink()
    status, out, err = _predict(capfd, files[0], "--model", tiny_tflite)
    _assert_one_line_error(status, out, err, tiny_tflite, "no squeezekit metadata")
