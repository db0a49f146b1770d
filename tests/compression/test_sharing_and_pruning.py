"""k-means weight sharing and magnitude pruning, against brute-force references."""

import numpy as np
import pytest

from squeezekit.compression.pruning import densities_for, magnitude_mask, parse_prune_spec
from squeezekit.compression.sharing import kmeans_1d, share_weights


def test_kmeans_is_a_fixed_point_of_lloyd_and_assigns_nearest():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 0.02, 5000), rng.normal(0.3, 0.05, 200), [-0.9]])
    codebook, indices = kmeans_1d(values, 16, init="linear")
    assert codebook.size <= 16 and np.all(np.diff(codebook) > 0)
    # Nearest-centroid assignment (brute force) and centroids equal to their members' means.
    nearest = np.argmin(np.abs(values[:, None] - codebook[None, :].astype(np.float64)), axis=1)
    np.testing.assert_array_equal(indices, nearest)
    for k in range(codebook.size):
        assert codebook[k] == pytest.approx(values[indices == k].mean(), rel=1e-4, abs=1e-6)
    # Linear initialisation keeps a centroid for the single outlier.
    assert codebook[0] == pytest.approx(-0.9)


def test_kmeans_keeps_few_distinct_values_exactly():
    values = np.array([0.5, -0.25, 0.5, 0.125], dtype=np.float32)
    codebook, indices = kmeans_1d(values, 256)
    np.testing.assert_array_equal(codebook[indices], values)


def test_share_weights_respects_the_mask():
    weights = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) - 12
    mask = np.abs(weights) > 6
    codebook, indices, positions = share_weights(weights, mask, bits=2)
    np.testing.assert_array_equal(positions, np.flatnonzero(mask))
    assert codebook.size <= 4
    with pytest.raises(ValueError, match="bits"):
        share_weights(weights, mask, bits=9)


def test_magnitude_mask_keeps_the_largest():
    weights = np.array([[0.1, -0.9], [0.5, -0.05]])
    np.testing.assert_array_equal(magnitude_mask(weights, 0.5), [[False, True], [True, False]])
    assert magnitude_mask(weights, 0.01).sum() == 1  # at least one weight survives
    with pytest.raises(ValueError, match="density"):
        magnitude_mask(weights, 0)


def test_prune_specs():
    names = ["conv1", "fire2/squeeze1x1", "fire2/expand3x3", "conv10"]
    assert densities_for(names, "0.4") == dict.fromkeys(names, 0.4)
    assert densities_for(names, "conv1=1,fire*/expand3x3=0.3,*=0.5") == {
        "conv1": 1.0, "fire2/squeeze1x1": 0.5, "fire2/expand3x3": 0.3, "conv10": 0.5}
    assert densities_for(names, "fire*=0.3") ["conv10"] == 1.0
    assert densities_for(names, "deep-compression")["conv10"] == 0.2
    for bad in ["", "x=abc", "1.5", "conv1=0"]:
        with pytest.raises(ValueError, match="--prune"):
            parse_prune_spec(bad)


def _brute_force_best(values, k):
    """Least squared error over every split of the sorted distinct values into k intervals."""
    import itertools

    distinct = np.unique(values)
    best = np.inf
    for cuts in itertools.combinations(range(1, distinct.size), k - 1):
        bounds = (0, *cuts, distinct.size)
        error = 0.0
        for a, b in zip(bounds[:-1], bounds[1:]):
            members = values[(values >= distinct[a]) & (values <= distinct[b - 1])]
            error += ((members - members.mean()) ** 2).sum()
        best = min(best, error)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_init_reaches_the_least_squares_partition(seed):
    rng = np.random.default_rng(seed)
    values = np.round(np.concatenate([rng.laplace(0, 0.05, 300), rng.normal(0.4, 0.1, 20)]), 2)
    codebook, indices = kmeans_1d(values, 4, init="optimal")
    error = ((values - codebook[indices].astype(np.float64)) ** 2).sum()
    assert error == pytest.approx(_brute_force_best(values, 4), rel=1e-5)
    linear_codebook, linear_indices = kmeans_1d(values, 4, init="linear")
    assert error <= ((values - linear_codebook[linear_indices].astype(np.float64)) ** 2).sum() + 1e-9


def test_optimal_init_on_many_distinct_values_beats_or_matches_linear():
    values = np.random.default_rng(3).standard_t(3, 20000) * 0.02
    for k in (4, 16):
        errors = {}
        for init in ("linear", "optimal"):
            codebook, indices = kmeans_1d(values, k, init=init)
            errors[init] = ((values - codebook[indices]) ** 2).sum()
        assert errors["optimal"] <= errors["linear"] * 1.0001
    with pytest.raises(ValueError, match="init"):
        kmeans_1d(values, 4, init="random")
