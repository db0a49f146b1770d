"""Bad `squeezekit export` input: exit status 2, one line on stderr, and no file written."""

from __future__ import annotations

import pytest

from squeezekit.cli.main import main


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["squeezenet1_1", "--format", "onnx", "--quantize", "float16"], "float16 is not available for --format onnx"),
        (["squeezenet1_1", "--format", "saved_model", "--quantize", "int8"], "not available for --format saved_model"),
        (["squeezenet7", "--format", "onnx"], "squeezenet7: no such model file or folder, and not a pretrained name"),
        (["missing.keras", "--format", "litert"], "missing.keras: no such model file or folder, and not a pretrained name"),
        (["squeezenet1_1", "--format", "onnx", "--min-agreement", "1.5"], "--min-agreement in [0, 1]"),
        (["squeezenet1_1", "--format", "onnx", "--min-agreement", "-0.1"], "--min-agreement in [0, 1]"),
    ],
)
def test_rejected_before_any_work(run_cli, tmp_path, monkeypatch, argv, fragment):
    """Impossible option combinations and unknown models: status 2, one line naming the problem."""
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli("export", *argv)
    assert status == 2
    assert fragment in err and err.startswith("squeezekit export: error:")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["squeezenet1_1", "--format", "pdf"], ["squeezenet1_1"],
                                  ["squeezenet1_1", "--format", "onnx", "--quantize", "int4"]])
def test_argparse_rejects_unknown_choices(capsys, argv):
    """Unknown --format/--quantize values or a missing --format: argparse's status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["export", *argv])
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["squeezenet1_1", "--format", "litert", "-o", "x.onnx"], "must end with .tflite for --format litert"),
        (["squeezenet1_1", "--format", "onnx", "-o", "x.tflite"], "must end with .onnx for --format onnx"),
        (["squeezenet1_1", "--format", "onnx", "--calibration", "no-such-folder"], "no-such-folder"),
    ],
)
def test_rejected_after_loading_the_model(data_dir, run_cli, tmp_path, monkeypatch, argv, fragment):
    """A wrong output suffix or a missing calibration folder: status 2, one line, nothing written."""
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli("export", *argv)
    assert status == 2
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
