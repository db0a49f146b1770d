"""SqueezeNetConfig: the paper's metaparameters and their validation (no Keras involved)."""

import pytest

from squeezekit.config import SqueezeNetConfig
from squeezekit.registry import PRESETS, get_preset


def test_v1_0_is_the_papers_metaparameters():
    # Paper section 5.1: base_e=128, incr_e=128, freq=2, pct_3x3=0.5, SR=0.125 give SqueezeNet.
    config = SqueezeNetConfig(base_e=128, incr_e=128, freq=2, pct_3x3=0.5, squeeze_ratio=0.125)
    assert config == PRESETS["squeezenet1_0"]
    expected = [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
                (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]
    assert [(s.squeeze, s.expand1x1, s.expand3x3) for s in config.fire_specs()] == expected
    assert [s.name for s in config.fire_specs()] == [f"fire{i}" for i in range(2, 10)]


def test_v1_1_differs_only_in_conv1_and_pools():
    v10, v11 = PRESETS["squeezenet1_0"], PRESETS["squeezenet1_1"]
    assert v11.fire_specs() == v10.fire_specs()
    assert (v11.conv1_filters, v11.conv1_kernel, v11.conv1_stride) == (64, 3, 2)
    assert v11.pool_after == ("conv1", "fire3", "fire5")


def test_metaparameters_move_filter_counts():
    specs = PRESETS["squeezenet1_0"].replace(squeeze_ratio=0.75, pct_3x3=0.25).fire_specs()
    assert (specs[0].squeeze, specs[0].expand1x1, specs[0].expand3x3) == (96, 96, 32)
    # pct_3x3 at its limits leaves one branch empty.
    assert PRESETS["squeezenet1_0"].replace(pct_3x3=1.0).fire_specs()[0].expand1x1 == 0
    assert PRESETS["squeezenet1_0"].replace(pct_3x3=0.0).fire_specs()[0].expand3x3 == 0


def test_bypass_positions_follow_the_paper():
    simple = PRESETS["squeezenet1_0"].replace(bypass="simple").bypass_kinds()
    assert [n for n, k in simple.items() if k == "identity"] == ["fire3", "fire5", "fire7", "fire9"]
    assert [n for n, k in simple.items() if k == "conv"] == []
    complex_ = PRESETS["squeezenet1_1"].replace(bypass="complex").bypass_kinds()
    assert [n for n, k in complex_.items() if k == "conv"] == ["fire2", "fire4", "fire6", "fire8"]


@pytest.mark.parametrize(
    "changes, parameter",
    [
        ({"squeeze_ratio": 0}, "squeeze_ratio"),
        ({"squeeze_ratio": -0.5}, "squeeze_ratio"),
        ({"pct_3x3": 1.5}, "pct_3x3"),
        ({"pct_3x3": -0.1}, "pct_3x3"),
        ({"base_e": 0}, "base_e"),
        ({"freq": 0}, "freq"),
        ({"bypass": "residual"}, "bypass"),
        ({"pool_rounding": "round"}, "pool_rounding"),
        ({"pool_after": ("conv1", "fire12")}, "pool_after"),
        ({"dropout": 1.0}, "dropout"),
        ({"base_e": 12.5}, "base_e"),
        ({"classifier_relu": "no"}, "classifier_relu"),
        ({"batch_norm": 1}, "batch_norm"),
    ],
)
def test_invalid_metaparameters_name_the_parameter(changes, parameter):
    with pytest.raises(ValueError, match=parameter):
        PRESETS["squeezenet1_0"].replace(**changes)


def test_unknown_metaparameter_and_preset():
    with pytest.raises(ValueError, match="squeez_ratio"):
        PRESETS["squeezenet1_0"].replace(squeez_ratio=0.5)
    with pytest.raises(ValueError, match="squeezenet1_1"):
        get_preset("squeezenet2")


def test_dict_round_trip():
    config = PRESETS["squeezenet1_1"].replace(bypass="complex", batch_norm=True, classifier_relu=False)
    assert SqueezeNetConfig.from_dict(config.to_dict()) == config
