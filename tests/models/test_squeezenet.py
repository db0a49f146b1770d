"""The Keras SqueezeNet models: parameters, shapes, saving, and agreement with a numpy reference.

Runs on whichever backend KERAS_BACKEND selects; CI runs this file on TensorFlow, JAX and PyTorch.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import numpy_reference as ref  # noqa: E402
from keras_helpers import random_caffe_weights, set_caffe_weights  # noqa: E402

from squeezekit import PRESETS, Fire, SqueezeNet, squeezenet1_0, squeezenet1_1  # noqa: E402
from squeezekit.graph import layer_table, minimum_input_size  # noqa: E402

CONFIGS = {
    "v1.0": PRESETS["squeezenet1_0"],
    "v1.1": PRESETS["squeezenet1_1"],
    "v1.1-simple": PRESETS["squeezenet1_1"].replace(bypass="simple"),
    "v1.1-simple-linear": PRESETS["squeezenet1_1"].replace(bypass="simple", classifier_relu=False),
    "v1.0-complex": PRESETS["squeezenet1_0"].replace(bypass="complex"),
    "v1.1-bn": PRESETS["squeezenet1_1"].replace(batch_norm=True),
    "sr0.25-pct0.75": PRESETS["squeezenet1_0"].replace(squeeze_ratio=0.25, pct_3x3=0.75),
    "pct1.0": PRESETS["squeezenet1_1"].replace(pct_3x3=1.0),
}


@pytest.mark.parametrize("key", list(CONFIGS))
def test_keras_parameters_equal_the_table(key):
    config = CONFIGS[key]
    model = SqueezeNet(config, input_shape=(64, 64, 3), classes=1000)
    table = layer_table(config, 64)
    keras_counts = {layer.name: layer.count_params() for layer in model.layers if layer.count_params()}
    fire_and_conv = {r.name: r.parameters for r in table.rows if r.parameters}
    if config.batch_norm:
        # Keras keeps conv and batch-norm parameters in separate layers outside Fire modules.
        keras_counts = _merge_bn(keras_counts)
    assert keras_counts == fire_and_conv
    assert model.count_params() == table.parameters


def _merge_bn(counts):
    merged = {}
    for name, count in counts.items():
        base = name[: -len("_bn")] if name.endswith("_bn") else name
        merged[base] = merged.get(base, 0) + count
    return merged


def test_presets_totals():
    assert squeezenet1_0(weights=None).count_params() == 1_248_424
    assert squeezenet1_1(weights=None).count_params() == 1_235_496


@pytest.mark.parametrize("builder, arch", [(squeezenet1_0, "squeezenet1_0"), (squeezenet1_1, "squeezenet1_1")])
@pytest.mark.parametrize("size", [224, 227, 64, "minimum"])
def test_output_shapes(builder, arch, size):
    if size == "minimum":
        size = minimum_input_size(PRESETS[arch])
    model = builder(weights=None, input_shape=(size, size, 3))
    x = np.random.default_rng(0).uniform(-50, 50, (2, size, size, 3)).astype("float32")
    probabilities = keras.ops.convert_to_numpy(model(x))
    assert probabilities.shape == (2, 1000)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    expected = {r.name: r.output_shape for r in layer_table(PRESETS[arch], size).rows}
    for layer in model.layers:
        if layer.name in expected and layer.name != "pool10":
            assert tuple(layer.output.shape[1:]) == expected[layer.name], layer.name


def test_minimum_size_minus_one_is_refused_before_building():
    size = minimum_input_size(PRESETS["squeezenet1_1"])
    with pytest.raises(ValueError, match=f"at least {size}"):
        squeezenet1_1(weights=None, input_shape=(size - 1, size - 1, 3))


def test_ceil_and_floor_pooling_sizes():
    ceil = squeezenet1_1(weights=None, input_shape=(227, 227, 3))
    floor = squeezenet1_1(weights=None, input_shape=(227, 227, 3), pool_rounding="floor")
    sizes = lambda m: [m.get_layer(n).output.shape[1] for n in ("pool1", "pool3", "pool5")]  # noqa: E731
    assert sizes(ceil) == [56, 28, 14]
    assert sizes(floor) == [56, 27, 13]


def test_variable_input_size_one_channel_and_classes():
    model = squeezenet1_1(weights=None, input_shape=(None, None, 1), classes=7)
    for size in (40, 57):
        out = model(np.zeros((1, size, size, 1), "float32"))
        assert tuple(out.shape) == (1, 7)


@pytest.mark.parametrize("pooling, shape", [(None, (2, 2, 512)), ("avg", (512,)), ("max", (512,))])
def test_feature_extractor(pooling, shape):
    model = squeezenet1_1(weights=None, include_top=False, pooling=pooling, input_shape=(48, 48, 3))
    assert tuple(model.output_shape[1:]) == shape


@pytest.mark.parametrize(
    "key, input_size, reference_kwargs",
    [
        ("v1.1", 67, dict(pool_after=("conv1", "fire3", "fire5"))),
        ("v1.0", 75, dict(pool_after=("conv1", "fire4", "fire8"))),
        ("v1.1-simple", 64, dict(pool_after=("conv1", "fire3", "fire5"), bypass="simple")),
        ("v1.0-complex", 64, dict(pool_after=("conv1", "fire4", "fire8"), bypass="complex")),
        ("pct1.0", 64, dict(pool_after=("conv1", "fire3", "fire5"))),
    ],
)
def test_agrees_with_numpy_reference(key, input_size, reference_kwargs):
    config = CONFIGS[key]
    model = SqueezeNet(config, input_shape=(input_size, input_size, 3), classes=10)
    weights = random_caffe_weights(model, seed=1)
    set_caffe_weights(model, weights)
    x = np.random.default_rng(2).uniform(-100, 100, (2, input_size, input_size, 3)).astype("float32")
    expected = ref.forward(weights, x.transpose(0, 3, 1, 2), conv1_stride=2, **reference_kwargs)
    got = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert expected.max() > 0.2  # random weights that still discriminate


def test_a_linear_classifier_passes_negative_scores_to_the_logits():
    config = CONFIGS["v1.1-simple-linear"]
    model = SqueezeNet(config, input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    weights = random_caffe_weights(model, seed=5)
    set_caffe_weights(model, weights)
    x = np.random.default_rng(6).uniform(-100, 100, (2, 64, 64, 3)).astype("float32")
    kwargs = dict(pool_after=("conv1", "fire3", "fire5"), bypass="simple", softmax=False)
    expected = ref.forward(weights, x.transpose(0, 3, 1, 2), classifier_relu=False, **kwargs)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, rtol=1e-4, atol=1e-3)
    with_relu = ref.forward(weights, x.transpose(0, 3, 1, 2), **kwargs)
    assert (expected < 0).any() and np.abs(expected - with_relu).max() > 0.1  # a ReLU left in would show


def test_floor_rounding_and_padded_classifier_agree_with_reference():
    config = PRESETS["squeezenet1_0"].replace(pool_rounding="floor", classifier_pad=1)
    model = SqueezeNet(config, input_shape=(70, 70, 3), classes=10, classifier_activation=None)
    weights = random_caffe_weights(model, seed=3)
    set_caffe_weights(model, weights)
    x = np.random.default_rng(4).uniform(-100, 100, (1, 70, 70, 3)).astype("float32")
    expected = ref.forward(
        weights, x.transpose(0, 3, 1, 2), pool_after=("conv1", "fire4", "fire8"), rounding="floor",
        conv10_pad=1, softmax=False,
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, rtol=1e-4, atol=1e-3)


def test_keras_file_round_trip(tmp_path):
    config = PRESETS["squeezenet1_1"].replace(bypass="complex", batch_norm=True)
    model = SqueezeNet(config, input_shape=(40, 40, 3), classes=5)
    # Non-trivial batch-norm statistics, so that a reload that dropped them would show.
    for variable in model.weights:
        if "moving_variance" in variable.path:
            variable.assign(np.full(variable.shape, 2.0, "float32"))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 40, 40, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)))
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]


def test_fire_layer_config_and_shape():
    layer = Fire(16, 64, 64, name="fire2")
    clone = Fire.from_config(layer.get_config())
    assert (clone.squeeze, clone.expand1x1, clone.expand3x3, clone.name) == (16, 64, 64, "fire2")
    assert layer.compute_output_shape((None, 20, 20, 96)) == (None, 20, 20, 128)
    out = layer(np.ones((1, 20, 20, 96), "float32"))
    assert tuple(out.shape) == (1, 20, 20, 128)
    assert [w.path for w in layer.weights][:2] == ["fire2/squeeze1x1/kernel", "fire2/squeeze1x1/bias"]
    with pytest.raises(ValueError, match="expand"):
        Fire(16, 0, 0)


@pytest.mark.parametrize(
    "kwargs, parameter",
    [
        (dict(classes=0), "classes"),
        (dict(weights="imagenet21k"), "weights"),
        (dict(input_shape=(224, 224)), "input_shape"),
        (dict(input_shape=(1, 224, 224, 3)), "input_shape"),
        (dict(input_shape=(16, 16, 3)), "input_shape height"),
        (dict(squeeze_ratio=0.0), "squeeze_ratio"),
        (dict(pct_3x3=2.0), "pct_3x3"),
        (dict(pooling="mean", include_top=False), "pooling"),
        (dict(weights="imagenet", classes=10), "classes"),
        (dict(weights="imagenet", bypass="simple"), "bypass"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_parameter(kwargs, parameter):
    kwargs.setdefault("weights", None)
    with pytest.raises(ValueError, match=parameter):
        squeezenet1_1(**kwargs)


@pytest.mark.parametrize("height, width", [(32, 32), (16, 9), (8, 8), (113, 113), (14, 15), (4, 6), (3, 3)])
def test_ceil_pooling_equals_the_numpy_reference_on_every_path(height, width):
    """RoundedMaxPooling2D against the independent numpy reference (Caffe ceil mode), on inputs with
    negative values: "same" pooling where it is equivalent (even sizes), an explicit pad elsewhere."""
    from squeezekit.models.pooling import RoundedMaxPooling2D

    x = np.random.default_rng(height * 100 + width).normal(0, 1, (2, height, width, 5)).astype(np.float32)
    layer = RoundedMaxPooling2D(3, 2, "ceil")
    got = keras.ops.convert_to_numpy(layer(x))
    expected = ref.max_pool(x.transpose(0, 3, 1, 2), 3, 2, "ceil").transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(got, expected)
    padding = layer._ceil_padding(x.shape)
    uses_same = any(after for _, after in padding) and layer._same_is_equivalent(x.shape, padding)
    assert uses_same == (height % 2 == 0 and width % 2 == 0)
