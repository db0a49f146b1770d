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


def _cost(values, codebook, indices, rate):
    """Squared error plus ``rate`` times the ideal code length of the indices, in bits."""
    counts = np.bincount(indices)
    counts = counts[counts > 0]
    bits = -(counts * np.log2(counts / values.size)).sum()
    return ((values - codebook[indices].astype(np.float64)) ** 2).sum() + rate * bits


@pytest.mark.parametrize("rate", [1e-4, 1e-3, 1e-2])
def test_entropy_constrained_sharing_reaches_the_brute_force_optimum(rate):
    # Every partition of the 9 distinct values into at most 4 intervals, priced as the programme prices it.
    import itertools

    rng = np.random.default_rng(4)
    values = np.round(rng.laplace(0, 0.1, 200), 1)
    distinct = np.unique(values)
    best = np.inf
    for k in range(1, 5):
        for cuts in itertools.combinations(range(1, distinct.size), k - 1):
            cells = np.searchsorted(np.asarray(cuts), np.searchsorted(distinct, values), side="right")
            means = np.bincount(cells, weights=values) / np.bincount(cells)
            best = min(best, _cost(values, means, cells, rate))
    codebook, indices = kmeans_1d(values, 4, rate=rate)
    assert _cost(values, codebook, indices, rate) == pytest.approx(best, rel=1e-5)


def test_entropy_constrained_sharing_beats_fixed_rate_at_equal_entropy():
    # Rate-distortion theory: at the index entropy of 16-value k-means on Laplacian weights, an
    # entropy-constrained quantiser has less squared error (about 1.5 dB at high rates).
    values = np.random.default_rng(5).laplace(0, 0.02, 40000)

    def entropy_and_error(codebook, indices):
        p = np.bincount(indices) / indices.size
        p = p[p > 0]
        return -(p * np.log2(p)).sum(), ((values - codebook[indices]) ** 2).mean()

    entropy, error = entropy_and_error(*kmeans_1d(values, 16))
    low, high = 1e-9, 1e-3
    for _ in range(40):  # the least rate whose indices are no more costly than k-means'
        middle = np.sqrt(low * high)
        if entropy_and_error(*kmeans_1d(values, 256, rate=middle))[0] <= entropy:
            high = middle
        else:
            low = middle
    constrained_entropy, constrained_error = entropy_and_error(*kmeans_1d(values, 256, rate=high))
    assert constrained_entropy <= entropy
    assert constrained_error < 0.9 * error


def test_entropy_constrained_options_are_checked():
    values = np.linspace(-1, 1, 100)
    with pytest.raises(ValueError, match="rate >= 0"):
        kmeans_1d(values, 4, rate=-1.0)
    with pytest.raises(ValueError, match="init='optimal'"):
        kmeans_1d(values, 4, init="linear", rate=0.1)
    # A large rate leaves one value; the cap of 2**bits values holds at any rate.
    assert kmeans_1d(values, 4, rate=1e3)[0].size == 1
    assert kmeans_1d(np.random.default_rng(0).normal(size=5000), 8, rate=1e-6)[0].size <= 8


def test_fit_rate_finds_the_least_rate_that_fits():
    from squeezekit.compression.api import compress_arrays, prune_arrays
    from squeezekit.compression.pipeline import LEAST_RATE, fit_rate
    from squeezekit.errors import ParameterError
    from squeezekit.formats.sqz import encode_sqz

    from compression_helpers import SMALL, random_arrays, small_metadata

    arrays = random_arrays()
    masks = prune_arrays(SMALL, arrays, "*=0.5")

    def share(rate):
        return compress_arrays(SMALL, arrays, bits=4, masks=masks, rate=rate)

    def size(layers):
        return len(encode_sqz(SMALL.to_dict(), small_metadata(), layers)[0])

    plain = size(share(0.0))
    target = int(0.8 * plain)
    rate, layers = fit_rate(share, size, target, lambda message: None)
    assert LEAST_RATE < rate and size(layers) <= target
    assert size(share(rate / 1.05)) > target  # the least such rate, to the bisection's 1 %
    assert fit_rate(share, size, plain + 100, lambda message: None)[0] == LEAST_RATE  # fits already
    with pytest.raises(ParameterError, match="positions, codebooks and biases alone"):
        fit_rate(share, size, 1000, lambda message: None)
