"""`squeezekit export --format tflm` on a random-weight CIFAR-sized model: files, arena, bit-exactness, C sources."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("tflite_micro")
pytest.importorskip("ai_edge_litert")

from small_model import write_images, write_small_keras  # noqa: E402
from squeezekit.cli.main import main  # noqa: E402
from squeezekit.export import tflm  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tflm")
    model = write_small_keras(folder / "small.keras")
    images = write_images(folder / "images", per_class=12)
    status = main(["export", str(model), "--format", "tflm", "-o", str(folder / "small.tflm"),
                   "--calibration", str(images)])
    assert status == 0
    return folder / "small.tflm", images


def test_the_folder_holds_the_model_its_c_sources_and_report(exported):
    out, _ = exported
    assert sorted(p.name for p in out.iterdir()) == sorted(tflm.FILES)
    data = (out / "model.tflite").read_bytes()
    described = tflm.describe(data)  # full-integer: no float tensor anywhere
    assert described.input_shape == (1, 32, 32, 3)
    report = json.loads((out / "report.json").read_text())
    assert report["flash_bytes"] == len(data) and report["tflm_equals_reference_kernels"]
    assert report["operators"] == list(dict.fromkeys(described.operators))
    header, source = (out / "model_data.h").read_text(), (out / "model_data.cc").read_text()
    assert f"kTensorArenaSize = {report['arena_bytes']};" in header
    assert f"constexpr int kInputZeroPoint = {described.input_zero_point};" in header
    assert f"#define SQUEEZEKIT_OP_COUNT {len(report['operators'])}" in header
    assert "alignas(16) const unsigned char g_model_data[]" in source
    assert f"const unsigned int g_model_data_len = {len(data)};" in source
    assert tflm.parse_c_array(source) == data
    assert '"zero"' in source and '"two"' in source  # the labels
    fits = {board["board"]: board["fits"] for board in report["boards"]}
    assert fits["Arduino Nano 33 BLE Sense (nRF52840)"] is (len(data) <= 1 << 20 and report["arena_bytes"] <= 256 << 10)


def test_the_arena_is_the_smallest_that_runs(exported):
    out, _ = exported
    arena = json.loads((out / "report.json").read_text())["arena_bytes"]
    assert arena % 16 == 0
    assert tflm.runs_in(out / "model.tflite", arena) and not tflm.runs_in(out / "model.tflite", arena - 16)


def test_tflm_equals_litert_reference_kernels_bit_for_bit_on_new_inputs(exported):
    out, _ = exported
    data = (out / "model.tflite").read_bytes()
    arena = json.loads((out / "report.json").read_text())["arena_bytes"]
    inputs = np.random.default_rng(7).integers(-128, 128, (12, 32, 32, 3), dtype=np.int8)
    ours = tflm.tflm_outputs(data, arena, inputs)
    np.testing.assert_array_equal(ours, tflm.reference_outputs(data, inputs))
    assert len({row.tobytes() for row in ours}) > 1  # the outputs depend on the input (not a constant model)
    from_c = tflm.parse_c_array((out / "model_data.cc").read_text())
    np.testing.assert_array_equal(tflm.tflm_outputs(from_c, arena, inputs), ours)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler")
def test_the_c_sources_compile(exported, tmp_path):
    out, _ = exported
    (tmp_path / "main.cc").write_text(
        '#include "model_data.h"\n#include <cstdio>\n'
        "int main() { std::printf(\"%u %zu %s %d\\n\", g_model_data_len, kTensorArenaSize, kLabels[0], kNumClasses);"
        " return (reinterpret_cast<unsigned long>(g_model_data) % 16) != 0; }\n")
    binary = tmp_path / "check"
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-I", str(out), str(tmp_path / "main.cc"),
                    str(out / "model_data.cc"), "-o", str(binary)], check=True, capture_output=True, timeout=120)
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30)
    report = json.loads((out / "report.json").read_text())
    assert run.returncode == 0 and run.stdout.split() == [str(report["flash_bytes"]), str(report["arena_bytes"]), "zero", "3"]


def test_refusals(exported, tmp_path, capsys):
    out, images = exported
    model = out.parent / "small.keras"
    arena = json.loads((out / "report.json").read_text())["arena_bytes"]
    status = main(["export", str(model), "--format", "tflm", "-o", str(tmp_path / "tight.tflm"),
                   "--calibration", str(images), "--max-arena", str(arena - 16)])
    err = capsys.readouterr().err
    assert status == 2 and f"{arena:,}-byte tensor arena, more than --max-arena {arena - 16:,}" in err, err
    assert not (tmp_path / "tight.tflm").exists() and not list(tmp_path.iterdir())
    status = main(["export", str(model), "--format", "onnx", "-o", str(tmp_path / "x.onnx"), "--max-arena", "1000"])
    assert status == 2 and "--max-arena" in capsys.readouterr().err

    floats = tmp_path / "float.tflite"
    assert main(["export", str(model), "--format", "litert", "-o", str(floats), "--calibration", str(images)]) == 0
    with pytest.raises(ValueError, match="not full-integer"):
        tflm.describe(floats.read_bytes())
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    status = main(["export", str(model), "--format", "tflm", "-o", str(tmp_path / "mine"), "--overwrite"])
    assert status == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_the_mcu_recipe_fits_an_arduino_nano_33_ble(tmp_path):
    """The `mcu` recipe's network, int8 in TFLM: <= 256 KB of flash for the model, <= 128 KB of arena.

    Flash and arena depend on the architecture, not on the weights' values, so random weights do.
    """
    from squeezekit.export import export_model
    from squeezekit.formats.metadata import ModelMetadata, write_sidecar
    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.registry import get_preset
    from squeezekit.training.recipes import get_recipe

    recipe = get_recipe("mcu")
    config = get_preset("squeezenet1_1").replace(**recipe.arch_overrides)
    model = SqueezeNet(config, input_shape=(32, 32, 3), classes=10)
    model.save(tmp_path / "mcu.keras")
    labels = tuple((f"c{i}", f"class {i}") for i in range(10))
    write_sidecar(tmp_path / "mcu.keras", ModelMetadata(labels, recipe.preprocessing, source="mcu recipe",
                                                        extra={"config": config.to_dict()}))
    images = write_images(tmp_path / "images", per_class=4)
    result = export_model(str(tmp_path / "mcu.keras"), "tflm", calibration=images, output=tmp_path / "mcu.tflm",
                          min_agreement=0.0)
    report = json.loads((result.path / "report.json").read_text())
    assert report["flash_bytes"] <= 256 * 1024 and report["arena_bytes"] <= 128 * 1024, report
    nano = next(b for b in report["boards"] if b["board"].startswith("Arduino Nano 33 BLE"))
    assert nano["fits"]
