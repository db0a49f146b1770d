"""The registry: names, lookups, refusals, and figures recomputed for every entry."""

from __future__ import annotations

import pytest

import squeezekit
from squeezekit.graph import build_plan
from squeezekit.registry import (
    ModelEntry,
    get_model_entry,
    get_preset,
    get_pretrained,
    list_models,
    pretrained_names,
    register_model,
)
from squeezekit.weights.registry import list_pretrained


def test_listing_and_patterns():
    assert squeezekit.list_models() == list_models("*")
    assert {"squeezenet1_0", "squeezenet1_1", "squeezenet1_0_simple_bypass"} <= set(list_models())
    assert list_models("squeezenet1_1*") == ["squeezenet1_1"]
    tagged = list_models(pretrained=True)
    assert "squeezenet1_0.imagenet_deep_compression" in tagged and "squeezenet1_1.imagenet_caffe_fp16" in tagged
    assert all("." in name for name in tagged)
    assert list_models("squeezenet1_1", pretrained=True) == ["squeezenet1_1.imagenet_caffe", "squeezenet1_1.imagenet_caffe_fp16"]


@pytest.mark.parametrize("name, arch, tag", [
    ("squeezenet1_1", "squeezenet1_1", None),
    ("squeezenet1_1.imagenet_caffe_fp16", "squeezenet1_1", "imagenet_caffe_fp16"),
    ("squeezenet1_0.imagenet", "squeezenet1_0", "imagenet_deep_compression"),  # keras.applications' word
    ("squeezenet1_0_complex_bypass", "squeezenet1_0_complex_bypass", None),
])
def test_one_lookup(name, arch, tag):
    entry, weights = get_model_entry(name)
    assert entry.name == arch
    assert (weights.tag if weights else None) == tag


def test_old_names_still_mean_the_default_weights():
    assert get_pretrained("squeezenet1_1").name == "squeezenet1_1.imagenet_caffe_fp16"
    assert get_pretrained("squeezenet1_0").name == "squeezenet1_0.imagenet_deep_compression"
    assert set(list_pretrained()) <= set(pretrained_names())


@pytest.mark.parametrize("name", ["squeezenet2_0", "squeezenet1_1.nonsense", "", "squeezenet1_0_simple_bypass.imagenet"])
def test_unknown_names_are_refused_with_the_choices(name):
    with pytest.raises(ValueError, match="Expected an architecture"):
        get_model_entry(name)


def test_duplicate_and_dotted_registrations_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_model(ModelEntry("squeezenet1_1", get_preset("squeezenet1_1"), "again", 1, 1))
    with pytest.raises(ValueError, match="without '.'"):
        register_model(ModelEntry("squeeze.net", get_preset("squeezenet1_1"), "dotted", 1, 1))


@pytest.mark.parametrize("name", list_models())
def test_architecture_figures_recomputed(name):
    entry = get_model_entry(name)[0]
    plan = build_plan(entry.config, 1000, input_size=entry.input_size)
    assert (entry.parameters, entry.macs) == (plan.parameters, plan.macs)


@pytest.mark.parametrize("name", list_pretrained())
def test_weights_figures_recomputed(name):
    weights = get_pretrained(name)
    config = get_preset(weights.arch).replace(**weights.config_overrides)
    plan = build_plan(config, 1000, input_size=weights.input_shape[:2], channels=weights.input_shape[2])
    assert (weights.parameters, weights.macs) == (plan.parameters, plan.macs)
    declared = [file.size for file in weights.files.values()]
    assert weights.file_size == (None if None in declared else sum(declared))


@pytest.mark.parametrize("name", [n for n in list_pretrained() if get_pretrained(n).file_size is not None])
def test_weights_file_size_measured(name, data_dir):
    weights = get_pretrained(name)
    assert sum((data_dir / file.relative_path).stat().st_size for file in weights.files.values()) == weights.file_size


@pytest.mark.parametrize("name", [n for n in list_pretrained() if get_pretrained(n).metrics])
def test_stored_accuracy_recomputed_on_sample_1000(name, data_dir):
    """The registry's accuracy, measured again with the float32 runtime model on the shared sample."""
    from squeezekit.evaluation import evaluate_images, find_labelled_images
    from squeezekit.opener import open_model

    classifier = open_model(name, purpose="the test", precision="float32")
    images = find_labelled_images(data_dir / "imagenet" / "sample-1000", classifier.metadata)
    result = evaluate_images(classifier.predict, images, classifier.metadata, batch_size=50)
    stored = get_pretrained(name).metrics["imagenet-sample-1000"]
    assert result.n == stored["n"]
    assert round(result.top1, 3) == stored["top1"] and round(result.top5, 3) == stored["top5"]
