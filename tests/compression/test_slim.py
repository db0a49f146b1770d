"""Channel pruning (``squeezekit.compression.slim``), numpy and ONNX Runtime only: the channel groups
the plan implies, exact removal of channels that carry nothing, the mean folded into the next bias,
a criterion that ranks channels by their effect, and the config that records the new widths.

The reference for every output is the ONNX model of the network before slimming, built by the
writer from the plan of the original config (a different path from the slicing under test)."""

import json

import numpy as np
import pytest

from compression_helpers import SMALL, random_arrays
from squeezekit.compression.api import layer_names
from squeezekit.compression.pipeline import arrays_engine
from squeezekit.compression.slim import (
    allocate_widths, channel_groups, channel_scores, channel_statistics, check_options, keep_strongest, network_cost,
    slim_arrays,
)
from squeezekit.config import SqueezeNetConfig

CONFIG = SMALL.replace(bypass="none")
IMAGES = np.random.default_rng(0).normal(0, 1, (24, 32, 32, 3)).astype(np.float32)


def _network(seed=1):
    return random_arrays(CONFIG, classes=3, seed=seed)


def _slim(arrays, widths, means=True):
    groups = channel_groups(CONFIG, 3)
    statistics = channel_statistics(CONFIG, arrays, IMAGES, groups)
    scores = channel_scores(groups, arrays, statistics)
    keep = keep_strongest(groups, scores, {g.producer: widths.get(g.producer, g.size) for g in groups})
    config, slimmed = slim_arrays(CONFIG, arrays, groups, keep, {k: s[0] for k, s in statistics.items()} if means else None)
    return config, slimmed, keep, scores


def test_groups_follow_the_fire_modules():
    groups = {g.producer: g for g in channel_groups(CONFIG, 3)}
    specs = CONFIG.fire_specs()
    assert "conv10" not in groups  # the classes stay
    assert groups["conv1"].consumers == (("fire2/squeeze1x1", 0),) and groups["conv1"].read_value == "pool1"
    assert groups["fire2/squeeze1x1"].consumers == (("fire2/expand1x1", 0), ("fire2/expand3x3", 0))
    assert groups["fire2/squeeze1x1"].read_value == "fire2/squeeze1x1"
    # An expand channel is read by the next squeeze at its offset in the concatenation, after the pool
    # when there is one (SMALL pools after conv1, fire4 and fire8).
    assert groups["fire3/expand3x3"].consumers == (("fire4/squeeze1x1", specs[1].expand1x1),)
    assert groups["fire3/expand3x3"].read_value == "fire3"
    assert groups["fire4/expand3x3"].read_value == "pool4"
    assert groups["fire9/expand3x3"].consumers == (("conv10", specs[-1].expand1x1),)
    assert len(groups) == 1 + 3 * len(specs)


def test_statistics_are_those_the_readers_see_after_pooling():
    """conv1's channel means, from the independent numpy forward pass: after pool1, which fire2 reads."""
    import numpy_reference as reference

    arrays = _network()
    groups = channel_groups(CONFIG, 3)
    mean, std = channel_statistics(CONFIG, arrays, IMAGES, groups)["conv1"]
    kernel = arrays["conv1/kernel"].transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> OIHW
    activations = np.maximum(reference.conv2d(IMAGES.transpose(0, 3, 1, 2), kernel, arrays["conv1/bias"], stride=2), 0)
    pooled = reference.max_pool(activations, 3, 2, "ceil")
    np.testing.assert_allclose(mean, pooled.mean(axis=(0, 2, 3)), rtol=1e-4)
    np.testing.assert_allclose(std, pooled.std(axis=(0, 2, 3)), rtol=1e-3)
    assert np.all(pooled.mean(axis=(0, 2, 3)) > 1.05 * activations.mean(axis=(0, 2, 3)))  # pooling raises them


def test_removing_dead_channels_changes_nothing():
    """Channels whose ReLU never opens (some made so, the random network's own) score 0 and go without a trace."""
    arrays = _network()
    dead = {"conv1": [0, 5], "fire4/squeeze1x1": [1], "fire5/expand1x1": [3, 4], "fire5/expand3x3": [0],
            "fire9/expand3x3": [7]}
    for producer, channels in dead.items():
        arrays[f"{producer}/bias"][channels] = -1e4
    groups = channel_groups(CONFIG, 3)
    scores = channel_scores(groups, arrays, channel_statistics(CONFIG, arrays, IMAGES, groups))
    for producer, channels in dead.items():
        assert np.all(scores[producer][channels] == 0)
    alive = {g.producer: max(1, int(np.count_nonzero(scores[g.producer]))) for g in groups}
    config, slimmed, keep, _ = _slim(arrays, alive)
    for producer, channels in dead.items():
        assert not set(channels) & set(keep[producer].tolist())
    assert config.conv1_filters <= CONFIG.conv1_filters - 2
    assert config.fire_specs()[3].expand1x1 <= CONFIG.fire_specs()[3].expand1x1 - 2
    layer_names(config, slimmed)  # every kernel has the shape the new config's plan needs
    np.testing.assert_allclose(arrays_engine(config, slimmed)(IMAGES), arrays_engine(CONFIG, arrays)(IMAGES),
                               rtol=1e-5, atol=1e-7)


def test_a_constant_channel_is_folded_into_the_next_bias():
    arrays = _network()
    # Channels that output a constant everywhere; their readers (fire4's and fire5's squeeze, after pool4)
    # are 1x1 convolutions, which read fire3/expand3x3 and fire4/expand3x3 at an offset.
    constant = {"fire3/expand1x1": 2, "fire3/expand3x3": 5, "fire4/expand3x3": 1}
    for producer, channel in constant.items():
        arrays[f"{producer}/kernel"][..., channel] = 0.0
        arrays[f"{producer}/bias"][channel] = 0.7
    widths = {producer: arrays[f"{producer}/bias"].size - 1 for producer in constant}
    config, slimmed, keep, scores = _slim(arrays, widths)
    for producer, channel in constant.items():
        assert scores[producer][channel] < 1e-6 and channel not in keep[producer]
    reference = arrays_engine(CONFIG, arrays)(IMAGES)
    np.testing.assert_allclose(arrays_engine(config, slimmed)(IMAGES), reference, rtol=1e-5, atol=1e-7)
    config, dropped, _, _ = _slim(arrays, widths, means=False)
    assert np.abs(arrays_engine(config, dropped)(IMAGES) - reference).max() > 1e-3


def test_the_score_ranks_channels_by_their_effect():
    """Layer by layer, keeping the best-scored half changes the outputs less than keeping the worst half."""
    arrays = _network(seed=3)
    groups = channel_groups(CONFIG, 3)
    statistics = channel_statistics(CONFIG, arrays, IMAGES, groups)
    scores = channel_scores(groups, arrays, statistics)
    means = {k: s[0] for k, s in statistics.items()}
    reference = arrays_engine(CONFIG, arrays)(IMAGES)

    def error(group, sign):
        widths = {g.producer: g.size for g in groups} | {group.producer: max(1, group.size // 2)}
        keep = keep_strongest(groups, {k: sign * v for k, v in scores.items()}, widths)
        config, slimmed = slim_arrays(CONFIG, arrays, groups, keep, means)
        return np.abs(arrays_engine(config, slimmed)(IMAGES) - reference).mean()

    wins = sum(error(group, 1) < error(group, -1) for group in groups)
    assert wins >= len(groups) - 3, f"the best half won in {wins} of {len(groups)} layers"


def test_allocation_meets_the_budget_and_removes_relatively_weak_channels_first():
    arrays = _network(seed=3)
    groups = channel_groups(CONFIG, 3)
    scores = channel_scores(groups, arrays, channel_statistics(CONFIG, arrays, IMAGES, groups))
    full = network_cost(CONFIG, 3, 32)["macs"]
    for fraction in (0.8, 0.5, 0.25):
        widths = allocate_widths(CONFIG, scores, classes=3, input_size=32, macs=int(fraction * full))
        keep = keep_strongest(groups, scores, widths)
        config, slimmed = slim_arrays(CONFIG, arrays, groups, keep)
        cost = network_cost(config, 3, 32)["macs"]
        assert 0.85 * fraction * full <= cost <= fraction * full, (fraction, cost / full)
        # One threshold on scores relative to their layer's mean: every removed channel is below every kept one.
        relative = {name: value / value.mean() for name, value in scores.items()}
        kept = np.concatenate([relative[g.producer][keep[g.producer]] for g in groups if widths[g.producer] > 1])
        removed = np.concatenate([np.delete(relative[g.producer], keep[g.producer]) for g in groups])
        assert removed.max() <= kept.min()
    with pytest.raises(ValueError, match="one channel per layer"):
        allocate_widths(CONFIG, scores, classes=3, input_size=32, macs=1000)


def test_new_widths_round_trip_through_the_config():
    config, _, _, _ = _slim(_network(), {"fire2/expand3x3": 3, "conv1": 4})
    assert config.fire_widths[0][2] == 3 and config.conv1_filters == 4
    assert SqueezeNetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert "fire_widths" not in CONFIG.to_dict()  # configs of the rule are written as before


@pytest.mark.parametrize("bad, fragment", [
    ({"fire_widths": [(2, 8, 8)] * 7}, "num_fire=8"),
    ({"fire_widths": [(0, 8, 8)] * 8}, "squeeze"),
    ({"fire_widths": [(2, 0, 0)] * 8}, "at least one expand"),
])
def test_bad_widths_are_refused(bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        CONFIG.replace(**bad)


def test_refusals():
    with pytest.raises(ValueError, match="bypass"):
        channel_groups(SMALL, 3)  # complex bypass
    for macs in (0, 1.5, True):
        with pytest.raises(ValueError, match="macs"):
            check_options(macs=macs, steps=1, finetune_epochs=0, finetune_images=1, statistics_images=1)
    groups = channel_groups(CONFIG, 3)
    with pytest.raises(ValueError, match="cannot keep"):
        keep_strongest(groups, {g.producer: np.zeros(g.size) for g in groups}, {g.producer: 0 for g in groups})
    keep = {g.producer: np.arange(g.size) for g in groups}
    for bad in ([1, 0], [0, 0], [], [0, 99]):
        with pytest.raises(ValueError, match="increasing channel indices"):
            slim_arrays(CONFIG, _network(), groups, keep | {"conv1": np.array(bad, int)})
