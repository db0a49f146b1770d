"""The same damaged file gives the same answer in every command: exit 2, one line, the file named once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compression_helpers import SMALL, random_arrays, small_metadata
from small_model import write_images, write_small_keras
from squeezekit.cli.main import main


def _onnx(path: Path, metadata) -> Path:
    from onnx import helper

    from squeezekit.formats.onnx import build_onnx_model

    model = build_onnx_model(SMALL, random_arrays(), input_size=None, metadata=small_metadata())
    del model.metadata_props[:]
    helper.set_model_props(model, {"squeezekit": json.dumps(metadata)})
    path.write_bytes(model.SerializeToString())
    return path


def _sqz(path: Path, metadata=None, damage: bool = False) -> Path:
    from squeezekit.compression.api import compress_arrays
    from squeezekit.formats.sqz import encode_sqz

    data, _ = encode_sqz(SMALL.to_dict(), metadata or small_metadata(), compress_arrays(SMALL, random_arrays(), bits=4))
    path.write_bytes(data[:-40] + bytes(40) if damage else data)
    return path


def _keras_with_sidecar(path: Path, change) -> Path:
    write_small_keras(path)
    sidecar = path.with_name(path.name + ".json")
    document = json.loads(sidecar.read_text())
    change(document)
    sidecar.write_text(json.dumps(document))
    return path


DAMAGED = {
    # name: (build(folder) -> path, words the message must hold)
    "sqz-checksum": (lambda folder: _sqz(folder / "model.sqz", damage=True), "checksum mismatch"),
    "sqz-labels-not-strings": (lambda folder: _sqz(folder / "labels.sqz", {**small_metadata(), "labels": [[1, 2], [3, 4], [5, 6]]}),
                               "field 'labels[0][0]'"),
    "onnx-labels-not-strings": (lambda folder: _onnx(folder / "labels.onnx", {**small_metadata(), "labels": [[0, None]] * 3}),
                                "field 'labels[0][0]'"),
    "onnx-resize-two-million": (lambda folder: _onnx(folder / "huge.onnx", {**small_metadata(), "preprocessing": {
        **small_metadata()["preprocessing"], "resize": 2_000_000}}), "field 'preprocessing.resize'"),
    "onnx-output-wider-than-labels": (lambda folder: _onnx(folder / "wide.onnx", {**small_metadata(), "labels": [["a", "b"]] * 2}),
                                      "its metadata names 2 classes"),
    "keras-preprocessing-not-a-mapping": (
        lambda folder: _keras_with_sidecar(folder / "m.keras", lambda d: d.update(preprocessing=[256, 227])),
        "field 'preprocessing' must be a JSON object"),
    "keras-sidecar-config-ill-typed": (
        lambda folder: _keras_with_sidecar(folder / "c.keras", lambda d: d["extra"]["config"].update(base_e="sixteen")),
        "base_e"),
}

# Which commands take which kind of file (the others refuse it as a usage error, which is also exit 2).
COMMANDS = {
    "predict": lambda model, images: ["predict", str(images / "c0" / "0.png"), "--model", str(model)],
    "evaluate": lambda model, images: ["evaluate", str(model), str(images)],
    "export": lambda model, images: ["export", str(model), "--format", "onnx", "-o", str(images.parent / "x.onnx")],
    "compress": lambda model, images: ["compress", str(model), "-o", str(images.parent / "x.sqz")],
}
READS = {"predict": ("sqz", "onnx", "keras"), "evaluate": ("sqz", "onnx", "keras"), "export": ("sqz", "keras"),
         "compress": ("sqz", "keras")}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("data") / "images", per_class=2)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", DAMAGED)
def test_damaged_file_is_exit_2_one_line_naming_it_once(tmp_path, images, capsys, damage, command):
    build, words = DAMAGED[damage]
    model = build(tmp_path)
    capsys.readouterr()
    status = main(COMMANDS[command](model, images))
    out, err = capsys.readouterr()
    assert status == 2, (status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"squeezekit {command}: error: "), lines[0]
    kind = model.suffix.lstrip(".")
    if kind in READS[command]:
        assert lines[0].count(str(model)) == 1, lines[0]  # the model, or its metadata file beside it, once
        if damage != "onnx-output-wider-than-labels" or command in ("predict", "evaluate"):
            assert words in lines[0], lines[0]
    assert not (images.parent / "x.onnx").exists() and not (images.parent / "x.sqz").exists()
