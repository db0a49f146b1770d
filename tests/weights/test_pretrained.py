"""Pretrained ImageNet SqueezeNets on real photos, against an independent numpy forward pass."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import numpy_reference as ref  # noqa: E402

from squeezekit import squeezenet1_0, squeezenet1_1  # noqa: E402
from squeezekit.graph import layer_table  # noqa: E402
from squeezekit.registry import get_preset  # noqa: E402
from squeezekit.preprocessing import decode_predictions, load_image, preprocess_input  # noqa: E402
from squeezekit.weights import get_weights_entry, list_pretrained  # noqa: E402
from squeezekit.weights.convert import read_source, squeezekit_layer_name  # noqa: E402

# Photos of the shared sample that both models classify correctly (about 62 % of the sample are).
SAMPLE = ["n01440764_tench.JPEG", "n01860187_black_swan.JPEG", "n02105162_malinois.JPEG", "n02793495_barn.JPEG",
          "n03662601_lifeboat.JPEG", "n04487394_trombone.JPEG"]

ARCHS = {
    "squeezenet1_0": (squeezenet1_0, dict(pool_after=("conv1", "fire4", "fire8"), conv10_pad=1)),
    "squeezenet1_1": (squeezenet1_1, dict(pool_after=("conv1", "fire3", "fire5"))),
}


def _sample_paths(data_dir):
    folder = data_dir / "imagenet" / "sample-1000"
    paths = [folder / name for name in SAMPLE]
    missing = [p.name for p in paths if not p.is_file()]
    assert not missing, f"sample images missing: {missing}"
    return paths


@pytest.mark.parametrize("arch", list(ARCHS))
def test_keras_matches_numpy_reference_on_real_images(arch, data_dir):
    builder, reference_kwargs = ARCHS[arch]
    model = builder(weights="imagenet")
    paths = _sample_paths(data_dir)
    # The reference does its own loading and Caffe preprocessing (NCHW, BGR, mean subtracted).
    reference_input = np.stack([ref.caffe_preprocess(p) for p in paths])
    caffe_weights = {squeezekit_layer_name(k): v for k, v in read_source(get_weights_entry(arch)).items()}
    expected = ref.forward(caffe_weights, reference_input, conv1_stride=2, **reference_kwargs)

    ours = preprocess_input(np.stack([load_image(p) for p in paths]))
    np.testing.assert_allclose(ours, reference_input.transpose(0, 2, 3, 1), atol=1e-4)
    probabilities = keras.ops.convert_to_numpy(model.predict_on_batch(ours))
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)

    # As keras.applications' own test: the photo's class is among the top 3.
    for path, top in zip(paths, decode_predictions(probabilities, top=3)):
        assert path.name.split("_")[0] in [wnid for wnid, _, _ in top], (path.name, top)


@pytest.mark.parametrize("name", list_pretrained())
def test_entries_recompute_their_figures(name):
    entry = get_weights_entry(name)
    config = get_preset(entry.arch).replace(**entry.config_overrides)
    assert layer_table(config, entry.input_shape[0]).parameters == entry.parameters
    assert entry.preprocessing.crop == entry.input_shape[0]
    assert entry.license and entry.source.startswith("https://")
    for file in entry.files.values():
        assert file.url.startswith("https://") and (file.sha256 or file.git_blob_sha1)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_default_entries_carry_measured_accuracy(arch):
    metrics = get_weights_entry(arch).metrics["imagenet-sample-1000"]
    assert 0.5 < metrics["top1"] < metrics["top5"] < 1.0
    assert metrics["command"].startswith("python benchmarks/")


def test_feature_extractor_loads_without_classifier(data_dir):
    model = squeezenet1_1(weights="imagenet", include_top=False, pooling="avg", input_shape=(128, 128, 3))
    assert tuple(model.output_shape) == (None, 512)
    full = squeezenet1_1(weights="imagenet")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.get_layer("fire9").weights[0]),
        keras.ops.convert_to_numpy(full.get_layer("fire9").weights[0]),
    )


def test_caffemodel_path_gives_the_same_model(tmp_path, data_dir):
    """A .caffemodel synthesised from the v1.1 weights converts to the same Keras model."""
    from squeezekit.weights.caffemodel import read_caffemodel, write_caffemodel
    from squeezekit.weights.convert import assign_arrays, caffe_to_keras_arrays

    caffe = read_source(get_weights_entry("squeezenet1_1"))
    write_caffemodel(tmp_path / "squeezenet_v1.1.caffemodel", caffe)
    model = squeezenet1_1(weights=None)
    assign_arrays(model, caffe_to_keras_arrays(read_caffemodel(tmp_path / "squeezenet_v1.1.caffemodel")))
    reference = squeezenet1_1(weights="imagenet")
    x = preprocess_input(np.stack([load_image(p) for p in _sample_paths(data_dir)[:2]]))
    np.testing.assert_array_equal(model.predict_on_batch(x), reference.predict_on_batch(x))


def test_caffemodel_download_is_checked_by_git_blob_id(tmp_path, monkeypatch, data_dir):
    """A file that is not DeepScale's original is refused, naming the expected git blob id."""
    from squeezekit.weights import WeightFileError
    from squeezekit.weights.caffemodel import write_caffemodel

    entry = get_weights_entry("squeezenet1_1.imagenet_caffe")
    target = tmp_path / entry.files["caffemodel"].relative_path
    target.parent.mkdir(parents=True)
    write_caffemodel(target, read_source(get_weights_entry("squeezenet1_1")))
    monkeypatch.setenv("SQUEEZEKIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SQUEEZEKIT_HOME", str(tmp_path / "home"))
    with pytest.raises(WeightFileError, match="9d2fc33abf653a6e8b2ee6cc63ede0e72ec67f44"):
        read_source(entry)
