"""Calibration image sources, the parity comparison and FAILED-CHECK names: numpy only, no conversion."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from squeezekit.config import Preprocessing
from squeezekit.export.api import failed_path
from squeezekit.runtime.calibration import calibration_images
from squeezekit.runtime.check import compare, predict_in_batches

SMALL = Preprocessing(resize=40, crop=32)  # Caffe convention (BGR, mean subtraction), small for speed
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _photo(path: Path, colour, size=(48, 40)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


def _is_red(batch: np.ndarray) -> np.ndarray:
    """Red photos after BGR + mean subtraction: the last channel (R) high, the first (B) low."""
    return (batch[..., 2].mean(axis=(1, 2)) > 100) & (batch[..., 0].mean(axis=(1, 2)) < -50)


def test_folder_subset_is_seeded_and_skips_unreadable_files(tmp_path):
    """A folder (searched recursively) gives `count` preprocessed images, the same ones for the same seed."""
    (tmp_path / "sub").mkdir()
    for i in range(6):
        _photo(tmp_path / ("sub" if i % 2 else ".") / f"p{i}.png", (40 * i, 10, 200))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")

    everything = calibration_images(tmp_path, SMALL, count=100)
    assert everything.shape == (6, 32, 32, 3) and everything.dtype == np.float32
    first, again = calibration_images(tmp_path, SMALL, count=3), calibration_images(tmp_path, SMALL, count=3)
    assert first.shape == (3, 32, 32, 3) and np.array_equal(first, again)
    assert not np.array_equal(first, calibration_images(tmp_path, SMALL, count=3, seed=1))


def test_zip_prefers_train_images(tmp_path):
    """A zip with train/ and val/ folders calibrates on train/ only (Imagenette's layout)."""
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.write(_photo(tmp_path / f"r{i}.png", RED), f"set/train/a/r{i}.png")
            zf.write(_photo(tmp_path / f"b{i}.png", BLUE), f"set/val/a/b{i}.png")
    batch = calibration_images(archive, SMALL, count=10)
    assert len(batch) == 3 and _is_red(batch).all()

    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as zf:
        zf.write(tmp_path / "b0.png", "b0.png")
    assert len(calibration_images(flat, SMALL)) == 1


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "expected a folder or a zip"),
    (lambda tmp: (tmp / "x.txt").write_text("no") and tmp / "x.txt", "expected a folder or a zip"),
    (lambda tmp: tmp, "no readable images"),
])
def test_bad_sources_raise_value_errors(tmp_path, make, message):
    """Missing, foreign or image-less sources raise ValueError (the CLI's exit status 2)."""
    with pytest.raises(ValueError, match=message):
        calibration_images(make(tmp_path), SMALL)


def test_count_must_be_positive(tmp_path):
    """--calibration-count 0 is refused."""
    with pytest.raises(ValueError, match="calibration count"):
        calibration_images(tmp_path, SMALL, count=0)


@pytest.mark.data
def test_default_source_is_imagenette_train(data_dir, monkeypatch):
    """Without --calibration: Imagenette train photos of the shared data, `count` of them."""
    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(data_dir))
    assert calibration_images(None, SMALL, count=5).shape == (5, 32, 32, 3)


@pytest.mark.data
def test_sample_photo_fallback_respects_count(data_dir, monkeypatch):
    """Without Imagenette the sample photos are used, and --calibration-count still limits them."""
    import squeezekit.runtime.calibration as calibration
    import squeezekit.weights  # noqa: F401  (import-order bug of squeezekit._resources: see the test below)

    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(data_dir))
    monkeypatch.setattr(calibration, "default_calibration_source", lambda: None)
    assert len(calibration_images(None, SMALL, count=100)) > 2
    assert len(calibration_images(None, SMALL, count=2)) == 2


def test_fallback_source_imports_in_a_fresh_process():
    """calibration_images(None) reaches squeezekit.samples without Keras or squeezekit.weights imported first."""
    code = ("import squeezekit.runtime.calibration, squeezekit.samples, sys; "
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_compare_agreement_and_largest_difference():
    """compare() counts matching top-1 classes and the largest absolute probability gap."""
    reference = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    candidate = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.4, 0.3, 0.3], [0.5, 0.4, 0.1]])
    report = compare(reference, candidate, threshold=0.75)
    assert report.n == 4 and report.top1_agreement == 0.75 and report.passed
    assert report.max_probability_difference == pytest.approx(0.1)
    assert not compare(reference, candidate, threshold=0.8).passed
    assert "FAILED" in compare(reference, candidate, threshold=0.8).describe()
    assert "passed" in report.describe() and "75.0 %" in report.describe()
    with pytest.raises(ValueError, match="shape"):
        compare(reference, candidate[:, :2], threshold=0.5)


def test_predict_in_batches_keeps_order():
    """Batched prediction concatenates in input order, with a short last batch."""
    images = np.arange(70, dtype=np.float32).reshape(70, 1)
    sizes = []

    def predict(batch):
        sizes.append(len(batch))
        return batch * 2

    assert np.array_equal(predict_in_batches(predict, images, batch_size=32), images * 2)
    assert sizes == [32, 32, 6]


@pytest.mark.parametrize("name, kept", [
    ("m.tflite", "m.FAILED-CHECK.tflite"),
    ("squeezenet1_1.int8.onnx", "squeezenet1_1.int8.FAILED-CHECK.onnx"),
    ("saved", "saved.FAILED-CHECK"),
])
def test_failed_path_names(tmp_path, name, kept):
    """A failed artefact keeps its extension, with FAILED-CHECK before it."""
    assert failed_path(tmp_path / name) == tmp_path / kept
