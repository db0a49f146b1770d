"""An export below its agreement threshold: exit status 1, a message, and the file kept under a FAILED-CHECK name."""

from __future__ import annotations

import json

import pytest

from squeezekit.cli.main import main

pytestmark = pytest.mark.data


def test_onnx_int8_below_threshold_exits_1_and_renames(photos, tmp_path, capsys):
    """int8 cannot agree on every photo the float model hesitates over: --min-agreement 1.0 fails the export."""
    output = tmp_path / "m.int8.onnx"
    status = main(["export", "squeezenet1_1", "--format", "onnx", "--quantize", "int8", "--calibration",
                   str(photos.hard), "--calibration-count", "16", "--min-agreement", "1.0", "-o", str(output)])
    captured = capsys.readouterr()
    kept = tmp_path / "m.int8.FAILED-CHECK.onnx"
    assert status == 1
    assert "FAILED" in captured.out + captured.err and "threshold 100.0 %" in captured.out
    assert str(kept) in captured.out
    assert kept.is_file() and not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [kept.name]


def test_litert_int8_failed_check_json_and_sidecar_follow_the_file(photos, tmp_path, capsys):
    """--json on a failed LiteRT check: exit 1, passed false, and the sidecar renamed with the .tflite."""
    output = tmp_path / "m.tflite"
    status = main(["export", "squeezenet1_1", "--format", "litert", "--quantize", "int8", "--calibration",
                   str(photos.hard), "--calibration-count", "16", "--min-agreement", "1", "-o", str(output), "--json"])
    report = json.loads(capsys.readouterr().out)
    kept = tmp_path / "m.FAILED-CHECK.tflite"
    assert status == 1
    assert report["check"]["passed"] is False and report["check"]["top1_agreement"] < 1.0
    assert report["path"] == str(kept) and report["metadata"] == str(tmp_path / "m.FAILED-CHECK.tflite.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.FAILED-CHECK.tflite", "m.FAILED-CHECK.tflite.json"]
    assert json.loads((tmp_path / "m.FAILED-CHECK.tflite.json").read_text())["extra"]["outputs"] == "scores"
