"""A saved .keras model with its metadata sidecar as MODEL: float32 to ONNX, LiteRT and SavedModel."""

from __future__ import annotations

import json

import numpy as np
import pytest

from squeezekit.cli.main import main

pytestmark = pytest.mark.data

LABELS = (("c0", "cat"), ("c1", "dog"), ("c2", "fish"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 3-class SqueezeNet v1.1 on 64x64 inputs with He-scaled random weights, saved with its sidecar."""
    import squeezekit
    from keras_helpers import random_caffe_weights, set_caffe_weights
    from squeezekit.config import Preprocessing
    from squeezekit.registry import get_preset
    from squeezekit.formats.metadata import ModelMetadata, write_sidecar

    model = squeezekit.squeezenet1_1(weights=None, input_shape=(64, 64, 3), classes=3)
    set_caffe_weights(model, random_caffe_weights(model, seed=1))
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    model.save(path)
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in get_preset("squeezenet1_1").to_dict().items()}
    write_sidecar(path, ModelMetadata(LABELS, Preprocessing(resize=72, crop=64), source="test", extra={"config": config}))
    return path


@pytest.mark.parametrize(
    "format, default_name, sidecar",
    [("onnx", "tiny.onnx", None), ("litert", "tiny.tflite", None), ("saved_model", "tiny", "tiny.json")],
)
def test_keras_file_float32_export_default_name(tiny_model, photos, tmp_path, monkeypatch, capsys,
                                                 format, default_name, sidecar):
    """Each format: written as MODEL.EXT in the current folder, exact check, the model's own labels and size."""
    monkeypatch.chdir(tmp_path)
    status = main(["export", str(tiny_model), "--format", format, "--calibration", str(photos.easy),
                   "--calibration-count", "16", "--json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    report = json.loads(captured.out)
    assert report["check"]["passed"] and report["check"]["top1_agreement"] == 1.0
    assert report["check"]["max_probability_difference"] < 1e-4
    assert report["path"] == default_name and (tmp_path / default_name).exists()

    if sidecar is None:
        from squeezekit.runtime.engines import open_engine

        metadata = open_engine(default_name).metadata
        assert not (tmp_path / f"{default_name}.json").exists()
    else:
        assert report["metadata"] == sidecar
        metadata = json.loads((tmp_path / sidecar).read_text())
    assert [tuple(label) for label in metadata["labels"]] == list(LABELS)
    assert (metadata["preprocessing"]["resize"], metadata["preprocessing"]["crop"]) == (72, 64)
    assert metadata["extra"]["input_size"] == [64, 64, 3] and metadata["extra"]["source_model"] == str(tiny_model)
    assert metadata["extra"]["config"]["pool_after"] == ["conv1", "fire3", "fire5"]

    if format != "saved_model":
        from squeezekit.runtime.classifier import Classifier

        classifier = Classifier.load(default_name)
        results = list(classifier.classify(sorted(photos.easy.iterdir()), top_k=3))
        assert all(r.error is None and {i for i, _, _ in r.top} == {"c0", "c1", "c2"} for r in results)
        assert np.isclose(sum(p for *_, p in results[0].top), 1.0, atol=1e-5)
