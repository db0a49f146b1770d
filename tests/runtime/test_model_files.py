"""Model files `squeezekit predict` cannot use, and usage errors: one line naming the file, exit status 2.

Also a LiteRT model with its metadata in a JSON file beside it, end to end. These run ``main()`` in
process (capturing the file descriptors, so that messages of the C++ runtimes count too); the
subprocess tests in test_predict_cli.py cover the process as a whole.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

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


def _tiny_tflite(size: int = 227) -> bytes:
    """A LiteRT model built without TensorFlow: MEAN over height and width, (1, size, size, 3) -> (1, 3)."""
    flatbuffers = pytest.importorskip("flatbuffers")
    b = flatbuffers.Builder(1024)
    b.ForceDefaults(True)  # write every field given, even when it equals the schema's default

    def int_vector(values):
        b.StartVector(4, len(values), 4)
        for value in reversed(values):
            b.PrependInt32(value)
        return b.EndVector()

    def table_vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    def table(*fields):  # (slot, kind, value); slots as numbered in LiteRT's schema.fbs
        b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
        for slot, kind, value in fields:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            else:
                getattr(b, f"Prepend{kind}Slot")(slot, value, 0)
        return b.EndObject()

    axes = b.CreateByteVector(np.array([1, 2], np.int32).tobytes())
    buffers = [table(), table((0, "offset", axes)), table()]  # buffer 0 is the empty sentinel
    names = [b.CreateString(name) for name in ("image", "axes", "scores")]
    shapes = [int_vector([1, size, size, 3]), int_vector([2]), int_vector([1, 3])]
    # Tensor: shape 0, type 1 (FLOAT32 = 0, INT32 = 2), buffer 2, name 3.
    tensors = [table((0, "offset", shapes[i]), (1, "Int8", kind), (2, "Uint32", buf), (3, "offset", names[i]))
               for i, (kind, buf) in enumerate([(0, 0), (2, 1), (0, 2)])]
    op_inputs, op_outputs = int_vector([0, 1]), int_vector([2])
    operator = table((0, "Uint32", 0), (1, "offset", op_inputs), (2, "offset", op_outputs))
    tensor_list, inputs, outputs, operators = table_vector(tensors), int_vector([0]), int_vector([2]), table_vector([operator])
    subgraph = table((0, "offset", tensor_list), (1, "offset", inputs), (2, "offset", outputs), (3, "offset", operators))
    mean = 40  # BuiltinOperator.MEAN
    opcode = table((0, "Int8", mean), (2, "Int32", 1), (3, "Int32", mean))
    opcodes, subgraphs, buffer_list = table_vector([opcode]), table_vector([subgraph]), table_vector(buffers)
    model = table((0, "Uint32", 3), (1, "offset", opcodes), (2, "offset", subgraphs), (4, "offset", buffer_list))
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.fixture
def tiny_tflite(tmp_path):
    pytest.importorskip("ai_edge_litert")
    path = tmp_path / "mean.tflite"
    path.write_bytes(_tiny_tflite())
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
        return path, "unreadable model metadata"
    if kind == "onnx-metadata-not-json":
        return _onnx_model(path=folder / "meta.onnx", metadata="{ not json"), "unreadable squeezekit metadata"
    if kind == "onnx-metadata-without-labels":
        metadata = json.dumps({"format": "squeezekit-model-metadata", "version": 1})
        return _onnx_model(path=folder / "meta.onnx", metadata=metadata), "unreadable squeezekit metadata"
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
    path, words = _unusable_model(kind, tmp_path, artefacts, _tiny_tflite() if "tflite" in kind else b"")
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
