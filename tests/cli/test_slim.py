"""`squeezekit slim` end to end on a small batch-norm model: steps with fine-tuning and accuracy, a .keras
file whose metadata records the new widths and that predict and export read; bad input is refused."""

import json

import numpy as np
import pytest

from compression_helpers import SMALL

pytest.importorskip("keras")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    from small_model import write_batch_norm_keras, write_images

    root = tmp_path_factory.mktemp("slim")
    labels = ("c0", "c1", "c2")  # the class folders write_images makes
    return write_batch_norm_keras(root / "small.keras", SMALL.replace(bypass="none"), labels), write_images(root / "images")


def test_slim_fine_tune_and_use_the_result(small_model, tmp_path, run_cli):
    from squeezekit.compression.pipeline import arrays_engine, load_source
    from squeezekit.opener import open_model

    model, images = small_model
    out = tmp_path / "slim.keras"
    status, stdout, err = run_cli("slim", model, "--macs", "0.5", "--steps", "2", "--data", images,
                                  "--finetune-epochs", "1", "--eval", images, "-o", out, "--json")
    assert status == 0, err
    report = json.loads(stdout)
    stages = report["stages"]
    assert [s["stage"] for s in stages] == ["source (float32)", "MACs <= 0.707x (step 1/2), before fine-tuning",
                                            "MACs <= 0.707x (step 1/2), fine-tuned", "MACs <= 0.5x (step 2/2), before fine-tuning",
                                            "MACs <= 0.5x (step 2/2), fine-tuned"]
    assert all("top1" in s for s in stages)
    assert 0.4 * stages[0]["macs"] <= stages[-1]["macs"] <= 0.5 * stages[0]["macs"]
    assert stages[-1]["parameters"] < stages[0]["parameters"]

    from squeezekit.reports import slim_markdown

    table = slim_markdown(stages).splitlines()  # what the command prints without --json
    assert len(table) == 2 + len(stages) and "(1.00x)" in table[2] and f"{stages[-1]['parameters']:,}" in table[-1]

    opened = open_model(out, "weights")
    assert [list(w) for w in opened.config.fire_widths] == stages[-1]["fire_widths"]
    assert opened.config.conv1_filters == stages[-1]["conv1_filters"]
    # The saved Keras model computes what the slimmed weights do in ONNX Runtime (the plan's other writer).
    source = load_source(str(out))
    batch = np.random.default_rng(1).normal(0, 1, (4, 32, 32, 3)).astype(np.float32)
    keras_model = open_model(out, "keras").model
    np.testing.assert_allclose(np.asarray(keras_model.predict_on_batch(batch)),
                               arrays_engine(source.config, source.arrays)(batch), rtol=1e-4, atol=1e-6)
    status, _, err = run_cli("export", out, "--format", "onnx", "--check", images, "--calibration", images,
                             "-o", tmp_path / "slim.onnx")
    assert status == 0, err
    status, stdout, err = run_cli("predict", images / "c0" / "0.png", "--model", tmp_path / "slim.onnx", "--json")
    assert status == 0, err


@pytest.mark.parametrize("extra, fragment", [
    (["--macs", "0"], "--macs"),
    (["--macs", "1.2"], "--macs"),
    (["--steps", "0"], "--steps"),
    (["-o", "slim.onnx"], "must end in .keras"),
])
def test_bad_options(small_model, tmp_path, run_cli, extra, fragment):
    model, images = small_model
    status, _, err = run_cli("slim", model, "--data", images, *extra)
    assert status == 2 and fragment in err and len(err.strip().splitlines()) == 1, err


def test_existing_outputs_are_kept(small_model, tmp_path, run_cli):
    model, images = small_model
    (tmp_path / "mine.keras").write_text("not yours")
    status, _, err = run_cli("slim", model, "--data", images, "-o", tmp_path / "mine.keras")
    assert status == 2 and "already exists" in err
    assert (tmp_path / "mine.keras").read_text() == "not yours"


def test_bypass_models_are_refused(tmp_path, run_cli):
    from small_model import write_batch_norm_keras, write_images

    model = write_batch_norm_keras(tmp_path / "bypass.keras", SMALL, ("c0", "c1", "c2"))
    status, _, err = run_cli("slim", model, "--data", write_images(tmp_path / "images", per_class=1),
                             "-o", tmp_path / "out.keras")
    assert status == 2 and "bypass" in err, err
    assert not (tmp_path / "out.keras").exists()
