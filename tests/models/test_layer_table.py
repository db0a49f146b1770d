"""The pure-Python Table 1 against the figures of the paper and hand computations."""

import pytest

from squeezekit.registry import PRESETS
from squeezekit.graph import layer_table, minimum_input_size

# Parameters per layer of SqueezeNet v1.0 (1000 classes), computed by hand from the filter counts:
# conv1 7*7*3*96 + 96; fire2 16*96+16 + 64*16+64 + 9*64*16+64; ...
V1_0_LAYER_PARAMETERS = {
    "conv1": 14_208, "fire2": 11_920, "fire3": 12_432, "fire4": 45_344, "fire5": 49_440,
    "fire6": 104_880, "fire7": 111_024, "fire8": 188_992, "fire9": 197_184, "conv10": 513_000,
}


def test_v1_0_parameters_per_layer_and_total():
    table = layer_table(PRESETS["squeezenet1_0"], 224)
    assert {r.name: r.parameters for r in table.rows if r.parameters} == V1_0_LAYER_PARAMETERS
    assert table.parameters == 1_248_424
    # "50x fewer parameters than AlexNet".
    assert 48 < table.alexnet_ratio < 50


def test_v1_1_total_and_conv1():
    table = layer_table(PRESETS["squeezenet1_1"], 224)
    assert table.parameters == 1_235_496
    assert table.rows[0].parameters == 3 * 3 * 3 * 64 + 64


def test_v1_0_output_sizes_at_224_match_table_1():
    # Table 1 of the paper: conv1 111x111x96, maxpool1 55x55x96, fire4 55x55x256, maxpool4 27x27x256,
    # fire8 27x27x512, maxpool8 13x13x512, conv10 13x13x1000 (the paper rounds as Caffe does).
    sizes = {r.name: r.output_shape for r in layer_table(PRESETS["squeezenet1_0"], 224).rows}
    assert sizes["conv1"] == (109, 109, 96)  # at 224; the paper's 111 is for 227 crops
    sizes = {r.name: r.output_shape for r in layer_table(PRESETS["squeezenet1_0"], 227).rows}
    assert sizes["conv1"] == (111, 111, 96)
    assert sizes["pool1"] == (55, 55, 96)
    assert sizes["pool4"] == (27, 27, 256)
    assert sizes["pool8"] == (13, 13, 512)
    assert sizes["conv10"] == (13, 13, 1000)


def test_ceil_and_floor_rounding_differ_on_even_maps():
    ceil = {r.name: r.output_shape[0] for r in layer_table(PRESETS["squeezenet1_1"], 227).rows}
    floor_config = PRESETS["squeezenet1_1"].replace(pool_rounding="floor")
    floor = {r.name: r.output_shape[0] for r in layer_table(floor_config, 227).rows}
    assert [ceil[n] for n in ("conv1", "pool1", "pool3", "pool5")] == [113, 56, 28, 14]
    assert [floor[n] for n in ("conv1", "pool1", "pool3", "pool5")] == [113, 56, 27, 13]


def test_minimum_input_sizes_by_hand():
    # v1.1 ceil: pool5 needs >= 3 in, so pool3 input >= 6, pool1 input >= 12, (H - 3) // 2 + 1 >= 12.
    assert minimum_input_size(PRESETS["squeezenet1_1"]) == 25
    assert minimum_input_size(PRESETS["squeezenet1_1"].replace(pool_rounding="floor")) == 31
    # v1.0: (H - 7) // 2 + 1 >= 12.
    assert minimum_input_size(PRESETS["squeezenet1_0"]) == 29


def test_too_small_input_is_refused():
    with pytest.raises(ValueError, match="at least 25"):
        layer_table(PRESETS["squeezenet1_1"], 24)


def test_bypass_parameters():
    base = layer_table(PRESETS["squeezenet1_0"]).parameters
    assert layer_table(PRESETS["squeezenet1_0"].replace(bypass="simple")).parameters == base
    # Complex bypass: 1x1 convs around fire2 (96->128), fire4 (128->256), fire6 (256->384), fire8 (384->512).
    extra = sum(c_in * c_out + c_out for c_in, c_out in ((96, 128), (128, 256), (256, 384), (384, 512)))
    assert layer_table(PRESETS["squeezenet1_0"].replace(bypass="complex")).parameters == base + extra


def test_classes_and_channels():
    table = layer_table(PRESETS["squeezenet1_1"], 32, channels=1, classes=10)
    assert table.rows[0].parameters == 3 * 3 * 1 * 64 + 64
    assert table.rows[-2].parameters == 512 * 10 + 10
