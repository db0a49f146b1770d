"""An export below its agreement threshold: exit status 1, a message, and the file kept under a FAILED-CHECK name."""

from __future__ import annotations

import json

import pytest

from squeezekit.cli.main import main

pytestmark = pytest.mark.data


def test_onnx_int8_below_min_agreement_exits_1_and_renames(photos, tmp_path, capsys):
    """--min-agreement 1.0 on an int8 export that misses some photos: exit 1, FAILED, file renamed."""
    output = tmp_path / "m.int8.onnx"
    status = main(["export", "squeezenet1_1", "--format", "onnx", "--quantize", "int8", "--calibration",
                   str(photos.hard), "--check", str(photos.easy), "--calibration-count", "16",
                   "--min-agreement", "1.0", "-o", str(output)])
    captured = capsys.readouterr()
    kept = tmp_path / "m.int8.FAILED-CHECK.onnx"
    assert status == 1
    assert "FAILED" in captured.out + captured.err and "threshold 100.0 %" in captured.out
    assert str(kept) in captured.out
    assert kept.is_file() and not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [kept.name]


def test_litert_int8_unrepresentative_calibration_fails_default_check(photos, tmp_path, capsys):
    """int8 calibrated on hesitant photos clips confident ones: the default 93 % check catches it (--json, exit 1).

    Calibrated on low-confidence photos, the class-score range is too narrow for photos the model is sure
    of; their top scores saturate and top-1 agreement on them drops to about 75 %. The metadata stays
    inside the renamed .tflite.
    """
    output = tmp_path / "m.tflite"
    status = main(["export", "squeezenet1_1", "--format", "litert", "--quantize", "int8", "--calibration",
                   str(photos.hard), "--check", str(photos.easy), "--calibration-count", "16", "-o", str(output),
                   "--json"])
    report = json.loads(capsys.readouterr().out)
    kept = tmp_path / "m.FAILED-CHECK.tflite"
    assert status == 1
    assert report["check"]["passed"] is False and report["check"]["threshold"] == pytest.approx(0.93)
    assert report["check"]["n"] == 16 and report["check"]["top1_agreement"] < 0.93
    from squeezekit.formats.litert_metadata import read_litert_metadata

    assert report["path"] == str(kept) and report["metadata"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.FAILED-CHECK.tflite"]
    assert read_litert_metadata(kept)["extra"]["outputs"] == "scores"


def test_a_model_litert_crashes_on_is_a_one_line_failure_not_an_abort(tmp_path, capsys):
    """LiteRT aborts the process (SIGABRT) loading the int8 model of the cifar recipe's architecture with
    complex bypass. The export probes it in a child process: exit 1, one line, nothing written."""
    from compression_helpers import random_arrays
    from small_model import write_images
    from squeezekit.cli.main import main
    from squeezekit.formats.metadata import ModelMetadata, write_sidecar
    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.registry import get_preset
    from squeezekit.training.recipes import get_recipe
    from squeezekit.weights.convert import assign_arrays

    recipe = get_recipe("cifar")
    config = get_preset("squeezenet1_1").replace(**{**recipe.arch_overrides, "bypass": "complex", "batch_norm": False})
    model = SqueezeNet(config, input_shape=(32, 32, 3), classes=3)
    assign_arrays(model, random_arrays(config, classes=3))
    path = tmp_path / "bypass.keras"
    model.save(path)
    labels = (("c0", "zero"), ("c1", "one"), ("c2", "two"))
    write_sidecar(path, ModelMetadata(labels, recipe.preprocessing, source="test",
                                      extra={"config": json.loads(json.dumps(config.to_dict()))}))
    images = write_images(tmp_path / "images", per_class=4)
    status = main(["export", str(path), "--format", "litert", "--quantize", "int8", "-o", str(tmp_path / "m.tflite"),
                   "--calibration", str(images)])
    err = capsys.readouterr().err
    if status == 0:  # a LiteRT that no longer crashes on it: then the file must be whole and checked
        assert (tmp_path / "m.tflite").is_file()
        return
    assert status == 1 and len(err.strip().splitlines()) == 1 and "LiteRT crashes" in err, err
    assert not (tmp_path / "m.tflite").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
