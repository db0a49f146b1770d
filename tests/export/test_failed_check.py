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
