"""Self-checks of the numpy SqueezeNet reference (tests/numpy_reference.py).

The reference is the oracle for the Keras model, so it is itself checked against the slowest,
most obviously correct code: explicit loops over every index. Sizes are tiny so this runs in well
under a second.
"""

from __future__ import annotations

import numpy as np
import pytest

import numpy_reference as ref

# v1.1 Fire channel plan: (squeeze, expand1x1, expand3x3) for fire2..fire9; conv1 is 64 3x3/2.
V11_FIRES = {
    2: (16, 64, 64),
    3: (16, 64, 64),
    4: (32, 128, 128),
    5: (32, 128, 128),
    6: (48, 192, 192),
    7: (48, 192, 192),
    8: (64, 256, 256),
    9: (64, 256, 256),
}


# --------------------------------------------------------------------------------------------------
# Naive loop implementations (the independent ground truth for the vectorised code)
# --------------------------------------------------------------------------------------------------


def naive_conv2d(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, ho, wo))
    for ni in range(n):
        for oi in range(o):
            for y in range(ho):
                for xx in range(wo):
                    acc = b[oi]
                    for ci in range(c):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy = y * stride + ky - pad
                                ix = xx * stride + kx - pad
                                # Outside the image counts as the zero padding.
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc += x[ni, ci, iy, ix] * w[oi, ci, ky, kx]
                    out[ni, oi, y, xx] = acc
    return out


def naive_max_pool(x, k, s, out_h, out_w):
    """Max over each window clipped to the image (Caffe's ceil-mode behaviour at the border)."""
    n, c, h, w = x.shape
    out = np.empty((n, c, out_h, out_w), dtype=x.dtype)
    for y in range(out_h):
        for xx in range(out_w):
            y0, x0 = y * s, xx * s
            out[:, :, y, xx] = x[:, :, y0 : min(y0 + k, h), x0 : min(x0 + k, w)].max(axis=(2, 3))
    return out


def random_weights(rng, fires, conv1=(64, 3, 3), classes=10, complex_bypass=False):
    """Random Caffe-named weights; conv1 = (out, kernel, in)."""

    def layer(o, c, k):
        # Small scale keeps activations O(1) through 10 layers, so softmax is not saturated.
        return rng.normal(0, 1 / np.sqrt(c * k * k), (o, c, k, k)), rng.normal(0, 0.1, o)

    c1_out, c1_k, c_in = conv1
    weights = {"conv1": layer(c1_out, c_in, c1_k)}
    channels = c1_out
    for i, (sq, e1, e3) in fires.items():
        weights[f"fire{i}/squeeze1x1"] = layer(sq, channels, 1)
        if e1:
            weights[f"fire{i}/expand1x1"] = layer(e1, sq, 1)
        if e3:
            weights[f"fire{i}/expand3x3"] = layer(e3, sq, 3)
        if complex_bypass and e1 + e3 != channels:
            weights[f"fire{i}/bypass"] = layer(e1 + e3, channels, 1)
        channels = e1 + e3
    weights["conv10"] = layer(classes, channels, 1)
    return weights


# --------------------------------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stride,pad,k", [(1, 0, 3), (2, 1, 3), (2, 0, 3), (1, 1, 3), (1, 0, 1), (2, 0, 7), (3, 2, 2)]
)
def test_conv2d_matches_naive_loops(stride, pad, k):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 9, 8))
    w = rng.normal(size=(4, 3, k, k))
    b = rng.normal(size=4)
    got = ref.conv2d(x, w, b, stride=stride, pad=pad)
    want = naive_conv2d(x, w, b, stride, pad)
    assert got.shape == want.shape
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv2d_is_cross_correlation_not_flipped():
    # A kernel with a single 1 at the top-left picks the top-left neighbour (no flip, as Caffe).
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.zeros((1, 1, 3, 3))
    w[0, 0, 0, 0] = 1.0
    out = ref.conv2d(x, w, np.zeros(1), pad=1)
    assert out[0, 0, 1, 1] == x[0, 0, 0, 0]
    assert out[0, 0, 0, 0] == 0.0  # neighbour is zero padding


def test_conv2d_rejects_channel_mismatch():
    with pytest.raises(ValueError):
        ref.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 4, 1, 1)), np.zeros(2))


# --------------------------------------------------------------------------------------------------
# max_pool
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,ceil_out,floor_out",
    [(113, 56, 56), (111, 55, 55), (55, 27, 27), (27, 13, 13), (14, 7, 6), (15, 7, 7), (6, 3, 2), (4, 2, 1), (3, 1, 1)],
)
def test_max_pool_output_sizes(size, ceil_out, floor_out):
    x = np.zeros((1, 1, size, size))
    assert ref.max_pool(x, 3, 2, "ceil").shape[2:] == (ceil_out, ceil_out)
    assert ref.max_pool(x, 3, 2, "floor").shape[2:] == (floor_out, floor_out)


@pytest.mark.parametrize("rounding", ["ceil", "floor"])
@pytest.mark.parametrize("h,w", [(14, 14), (13, 10), (7, 8), (3, 4)])
def test_max_pool_matches_naive_clipped_windows(rounding, h, w):
    rng = np.random.default_rng(1)
    # Negative values matter: a zero-padded border would wrongly win over all-negative windows.
    x = rng.normal(size=(2, 3, h, w)) - 1.0
    got = ref.max_pool(x, 3, 2, rounding)
    want = naive_max_pool(x, 3, 2, got.shape[2], got.shape[3])
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).all()


def test_max_pool_ceil_keeps_the_clipped_border_window():
    # 14 wide: ceil gives a 7th window covering only column 12..13, which floor drops.
    x = np.zeros((1, 1, 14, 14))
    x[0, 0, 13, 13] = 5.0
    assert ref.max_pool(x, 3, 2, "ceil")[0, 0, 6, 6] == 5.0
    assert ref.max_pool(x, 3, 2, "floor").max() == 0.0


def test_max_pool_keeps_float32():
    assert ref.max_pool(np.zeros((1, 1, 5, 5), np.float32)).dtype == np.float32


def test_max_pool_rejects_bad_rounding():
    with pytest.raises(ValueError):
        ref.max_pool(np.zeros((1, 1, 5, 5)), rounding="round")


# --------------------------------------------------------------------------------------------------
# fire and forward
# --------------------------------------------------------------------------------------------------


def test_forward_v11_like_small_input():
    rng = np.random.default_rng(2)
    weights = random_weights(rng, V11_FIRES, classes=10)
    x = rng.normal(0, 50, size=(2, 3, 32, 32))
    pools = ("conv1", "fire3", "fire5")

    probs = ref.forward(weights, x, pool_after=pools)
    assert probs.shape == (2, 10)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)

    # 32 -conv1 3x3/2-> 15 -pool-> 7 -pool(fire3)-> 3 -pool(fire5)-> 1 (ceil mode).
    feats = ref.forward(weights, x, pool_after=pools, include_top=False)
    assert feats.shape == (2, 512, 1, 1)

    logits = ref.forward(weights, x, pool_after=pools, softmax=False)
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs, rtol=1e-10)


def test_forward_v10_like_shapes_and_floor_rounding():
    # v1.0 layout (conv1 7x7/2, pools after conv1, fire4, fire8) with few channels to stay fast.
    fires = {2: (4, 8, 8), 3: (4, 8, 8), 4: (8, 16, 16), 5: (8, 16, 16), 6: (8, 24, 24), 7: (8, 24, 24), 8: (8, 32, 32), 9: (8, 32, 32)}
    rng = np.random.default_rng(3)
    weights = random_weights(rng, fires, conv1=(16, 7, 3), classes=5)
    x = rng.normal(size=(1, 3, 47, 47))
    pools = ("conv1", "fire4", "fire8")
    # 47 -> 21; ceil: 21 -> 10 -> 5 -> 2; floor: 21 -> 10 -> 4 -> 1.
    assert ref.forward(weights, x, pool_after=pools, include_top=False).shape == (1, 64, 2, 2)
    assert ref.forward(weights, x, pool_after=pools, include_top=False, rounding="floor").shape == (1, 64, 1, 1)


def test_fire_simple_bypass_adds_input_only_when_channels_match():
    rng = np.random.default_rng(4)
    weights = random_weights(rng, V11_FIRES)
    x = np.abs(rng.normal(size=(1, 128, 5, 5)))  # fire3: 128 in, 128 out
    plain = ref.fire(weights, x, 3, "none")
    np.testing.assert_allclose(ref.fire(weights, x, 3, "simple"), plain + x, rtol=1e-12)
    x2 = np.abs(rng.normal(size=(1, 64, 5, 5)))  # fire2: 64 in, 128 out -> no shortcut
    np.testing.assert_array_equal(ref.fire(weights, x2, 2, "simple"), ref.fire(weights, x2, 2, "none"))


def test_fire_complex_bypass_adds_projection_where_channels_differ():
    rng = np.random.default_rng(5)
    weights = random_weights(rng, V11_FIRES, complex_bypass=True)
    assert "fire2/bypass" in weights and "fire3/bypass" not in weights
    x = np.abs(rng.normal(size=(1, 64, 5, 5)))
    w, b = weights["fire2/bypass"]
    want = ref.fire(weights, x, 2, "none") + ref.conv2d(x, w, b)  # no ReLU on the projection
    np.testing.assert_allclose(ref.fire(weights, x, 2, "complex"), want, rtol=1e-12)
    # Equal channels: complex behaves like simple.
    x3 = np.abs(rng.normal(size=(1, 128, 5, 5)))
    np.testing.assert_allclose(ref.fire(weights, x3, 3, "complex"), ref.fire(weights, x3, 3, "simple"), rtol=1e-12)
    # And the whole network runs with it.
    probs = ref.forward(weights, rng.normal(size=(1, 3, 32, 32)), pool_after=("conv1", "fire3", "fire5"), bypass="complex")
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-12)


def test_fire_with_a_single_expand_branch():
    rng = np.random.default_rng(6)
    only_1x1 = random_weights(rng, {2: (4, 8, 0)})
    only_3x3 = random_weights(rng, {2: (4, 0, 8)})
    x = rng.normal(size=(1, 64, 6, 6))
    assert ref.fire(only_1x1, x, 2).shape == (1, 8, 6, 6)
    out3 = ref.fire(only_3x3, x, 2)
    assert out3.shape == (1, 8, 6, 6)
    s = np.maximum(ref.conv2d(x, *only_3x3["fire2/squeeze1x1"]), 0)
    np.testing.assert_allclose(out3, np.maximum(ref.conv2d(s, *only_3x3["fire2/expand3x3"], pad=1), 0))


def test_fire_concat_order_is_expand1x1_then_expand3x3():
    rng = np.random.default_rng(7)
    weights = random_weights(rng, {2: (4, 3, 5)})
    x = rng.normal(size=(1, 64, 4, 4))
    out = ref.fire(weights, x, 2)
    s = np.maximum(ref.conv2d(x, *weights["fire2/squeeze1x1"]), 0)
    np.testing.assert_allclose(out[:, :3], np.maximum(ref.conv2d(s, *weights["fire2/expand1x1"]), 0))
    np.testing.assert_allclose(out[:, 3:], np.maximum(ref.conv2d(s, *weights["fire2/expand3x3"], pad=1), 0))


def test_conv10_pad_border_is_relu_bias_in_the_average():
    rng = np.random.default_rng(8)
    weights = random_weights(rng, V11_FIRES, classes=6)
    x = rng.normal(size=(1, 3, 64, 64))
    pools = ("conv1", "fire3", "fire5")
    feats = ref.forward(weights, x, pool_after=pools, include_top=False)
    h, w = feats.shape[2:]
    inner = ref.forward(weights, x, pool_after=pools, softmax=False)  # pad 0: mean of H*W pixels
    padded = ref.forward(weights, x, pool_after=pools, softmax=False, conv10_pad=1)
    relu_b = np.maximum(weights["conv10"][1], 0)
    border = (h + 2) * (w + 2) - h * w
    want = (inner * h * w + border * relu_b) / ((h + 2) * (w + 2))
    np.testing.assert_allclose(padded, want, rtol=1e-12)


def test_forward_rejects_unknown_pool_site():
    weights = random_weights(np.random.default_rng(9), V11_FIRES)
    with pytest.raises(ValueError):
        ref.forward(weights, np.zeros((1, 3, 32, 32)), pool_after=("fire10",))


# --------------------------------------------------------------------------------------------------
# caffe_preprocess (needs Pillow; skipped where it is not installed)
# --------------------------------------------------------------------------------------------------


def test_caffe_preprocess_uniform_image(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    path = tmp_path / "uniform.png"
    Image.new("RGB", (300, 400), (200, 100, 50)).save(path)  # portrait, R=200 G=100 B=50
    out = ref.caffe_preprocess(path)
    assert out.shape == (3, 227, 227) and out.dtype == np.float32
    # BGR order, minus the BGR mean: B 50-104, G 100-117, R 200-123.
    np.testing.assert_allclose(out[:, 0, 0], [-54.0, -17.0, 77.0], atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 0.0, atol=1e-4)


def test_caffe_preprocess_resizes_shorter_side_then_center_crops(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    # Landscape 512x256: shorter side already 256, so no resampling happens; the crop is then
    # columns (512-227)//2 = 142 .. 369 and rows 14 .. 241 of the original, exactly.
    rng = np.random.default_rng(10)
    pixels = rng.integers(0, 256, size=(256, 512, 3), dtype=np.uint8)
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    out = ref.caffe_preprocess(path)
    want = pixels[14 : 14 + 227, 142 : 142 + 227, ::-1].astype(np.float32) - ref.CAFFE_BGR_MEAN
    np.testing.assert_array_equal(out, want.transpose(2, 0, 1))
