"""Independent numpy reference of the SqueezeNet forward pass (Caffe semantics).

Tests compare the Keras model of ``squeezekit`` against this module. To be a useful oracle it must
not share code or frameworks with the code under test, so it imports numpy only (Pillow is imported
lazily inside :func:`caffe_preprocess`, the one place that needs it). Everything is written for
clarity, not speed, and in Caffe's layout and conventions:

* tensors are NCHW, conv weights are OIHW (``(out, in, kh, kw)``, as stored in ``.caffemodel``);
* convolution is cross-correlation (no kernel flip), symmetric zero padding;
* max pooling has no padding and, by default, Caffe's *ceil* output size with windows clipped at the
  bottom/right border (Keras/TF ``padding="valid"`` is the *floor* size, hence the option);
* all arithmetic is done in float64 so the reference is more precise than the model under test.

Public API::

    conv2d(x, w, b, stride=1, pad=0)
    max_pool(x, k=3, s=2, rounding="ceil")
    fire(weights, x, index, bypass="none")
    forward(weights, x, *, pool_after, conv1_stride=2, conv10_pad=0, rounding="ceil",
            bypass="none", include_top=True, softmax=True)
    caffe_preprocess(path, size=227, resize=256)

``weights`` maps Caffe layer names to ``(w, b)``: ``"conv1"``, ``"fire{i}/squeeze1x1"``,
``"fire{i}/expand1x1"``, ``"fire{i}/expand3x3"`` for i = 2..9, ``"conv10"`` and, for the complex
bypass variant, ``"fire{i}/bypass"`` (1x1 convs). Either expand branch may be missing (a Fire with
pct_3x3 of 0 or 1); the Fire output is then just the present branch.
"""

from __future__ import annotations

from typing import Collection, Mapping

import numpy as np

__all__ = ["conv2d", "max_pool", "fire", "forward", "caffe_preprocess", "CAFFE_BGR_MEAN"]

# Per-channel mean subtracted by the original Caffe SqueezeNet data layer, in B, G, R order.
CAFFE_BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)

_FIRE_INDICES = tuple(range(2, 10))
_POOL_SITES = frozenset(["conv1"] + [f"fire{i}" for i in _FIRE_INDICES])
_BYPASS_MODES = ("none", "simple", "complex")
_ROUNDING_MODES = ("ceil", "floor")


# --------------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------------


def conv2d(x, w, b, stride: int = 1, pad: int = 0) -> np.ndarray:
    """2-D cross-correlation, Caffe style, via im2col + one matmul; returns float64 NCHW.

    x: (N, C, H, W); w: (O, C, kh, kw); b: (O,). ``pad`` zeros are added on all four sides
    (symmetric, as Caffe does; TF's "same" padding can be asymmetric, which is exactly the kind of
    mismatch this reference should expose). Output size is floor((H + 2*pad - kh) / stride) + 1.
    """
    # float64 everywhere: the reference must not add float32 rounding of its own.
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d wants x (N,C,H,W) and w (O,C,kh,kw), got {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    o, wc, kh, kw = w.shape
    if wc != c:
        raise ValueError(f"conv2d: input has {c} channels but weight expects {wc}")
    if b.shape != (o,):
        raise ValueError(f"conv2d: bias shape {b.shape} does not match {o} output channels")
    if stride < 1 or pad < 0:
        raise ValueError(f"conv2d: bad stride={stride} / pad={pad}")

    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    hp, wp = h + 2 * pad, wd + 2 * pad
    if hp < kh or wp < kw:
        raise ValueError(f"conv2d: padded input {hp}x{wp} is smaller than the {kh}x{kw} kernel")

    # im2col: every kh x kw patch at stride 1, then keep every `stride`-th one. The view costs no
    # memory; reshape below materialises only the patches actually used.
    patches = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    patches = patches[:, :, ::stride, ::stride]  # (N, C, Ho, Wo, kh, kw)
    ho, wo = patches.shape[2], patches.shape[3]
    # Column order (C, kh, kw) matches w.reshape(O, C*kh*kw), so one matmul does the whole conv.
    cols = patches.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    out = cols @ w.reshape(o, c * kh * kw).T + b  # (N*Ho*Wo, O)
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def _pool_out_size(size: int, k: int, s: int, rounding: str) -> int:
    """Pooled length: Caffe ceil((size-k)/s)+1, or floor((size-k)/s)+1 as Keras "valid" gives."""
    if size < k:
        # Neither framework defines a sensible result here for pad 0; refuse rather than guess.
        raise ValueError(f"max_pool: input size {size} is smaller than the window {k}")
    if rounding == "ceil":
        # Integer ceil division: avoids float error in math.ceil((size - k) / s).
        out = -(-(size - k) // s) + 1
        # Caffe drops a last window that would start in the padding; with pad 0 the last start,
        # (out-1)*s, is always < size, so this never triggers, but keep Caffe's rule explicit.
        if (out - 1) * s >= size:
            out -= 1
        return out
    if rounding == "floor":
        return (size - k) // s + 1
    raise ValueError(f"rounding must be one of {_ROUNDING_MODES}, got {rounding!r}")


def max_pool(x, k: int = 3, s: int = 2, rounding: str = "ceil") -> np.ndarray:
    """k x k max pooling with stride s and no padding over NCHW ``x``; keeps x's float dtype.

    rounding="ceil" is Caffe: out = ceil((H-k)/s)+1, the last window may run past the border and
    is clipped to the valid pixels (113 -> 56, 14 -> 7). rounding="floor" is Keras/TF "valid":
    out = floor((H-k)/s)+1, partial windows are dropped (113 -> 56, 14 -> 6).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.ndim != 4:
        raise ValueError(f"max_pool wants x (N,C,H,W), got shape {x.shape}")
    h, w = x.shape[2], x.shape[3]
    ho = _pool_out_size(h, k, s, rounding)
    wo = _pool_out_size(w, k, s, rounding)

    # Clipping a window to the valid pixels is the same as padding bottom/right with -inf (never
    # the max, and each window keeps at least one real pixel); floor mode then needs no padding,
    # only a crop, which the [:ho, :wo] below does.
    need_h, need_w = (ho - 1) * s + k, (wo - 1) * s + k
    extra_h, extra_w = max(need_h - h, 0), max(need_w - w, 0)
    if extra_h or extra_w:
        x = np.pad(x, ((0, 0), (0, 0), (0, extra_h), (0, extra_w)), constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    windows = windows[:, :, ::s, ::s][:, :, :ho, :wo]  # (N, C, Ho, Wo, k, k)
    return windows.max(axis=(4, 5))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _softmax(z: np.ndarray) -> np.ndarray:
    # Subtract the row max for numerical stability; it does not change the result.
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _wb(weights: Mapping, name: str):
    """(w, b) of layer ``name`` as float64 arrays, with a clear error when it is missing."""
    if name not in weights:
        raise KeyError(f"weights has no entry {name!r}")
    w, b = weights[name]
    return np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# Fire module and full network
# --------------------------------------------------------------------------------------------------


def fire(weights: Mapping, x, index: int, bypass: str = "none") -> np.ndarray:
    """Fire module ``fire{index}`` on NCHW ``x`` (float64 out), including its bypass, if any.

    squeeze 1x1 + ReLU, then expand 1x1 + ReLU and expand 3x3 (pad 1) + ReLU concatenated on the
    channel axis (1x1 first, as in Caffe's concat order). A missing expand branch is skipped.
    bypass: "simple" adds the input when channel counts match; "complex" also adds a 1x1 conv of
    the input (no ReLU) where they differ and ``fire{index}/bypass`` exists. The sum is not
    followed by a ReLU (Caffe's Eltwise layer has none).
    """
    if bypass not in _BYPASS_MODES:
        raise ValueError(f"bypass must be one of {_BYPASS_MODES}, got {bypass!r}")
    x = np.asarray(x, dtype=np.float64)
    prefix = f"fire{index}"

    s = _relu(conv2d(x, *_wb(weights, f"{prefix}/squeeze1x1")))
    branches = []
    if f"{prefix}/expand1x1" in weights:
        branches.append(_relu(conv2d(s, *_wb(weights, f"{prefix}/expand1x1"))))
    if f"{prefix}/expand3x3" in weights:
        # pad 1 keeps the 3x3 branch the same size as the 1x1 branch, so they can be concatenated.
        branches.append(_relu(conv2d(s, *_wb(weights, f"{prefix}/expand3x3"), pad=1)))
    if not branches:
        raise KeyError(f"{prefix} has neither expand1x1 nor expand3x3 weights")
    out = branches[0] if len(branches) == 1 else np.concatenate(branches, axis=1)

    if bypass != "none":
        if out.shape[1] == x.shape[1]:
            out = out + x  # identity shortcut
        elif bypass == "complex" and f"{prefix}/bypass" in weights:
            out = out + conv2d(x, *_wb(weights, f"{prefix}/bypass"))  # 1x1 projection shortcut
    return out


def forward(
    weights: Mapping,
    x,
    *,
    pool_after: Collection[str],
    conv1_stride: int = 2,
    conv10_pad: int = 0,
    rounding: str = "ceil",
    bypass: str = "none",
    include_top: bool = True,
    softmax: bool = True,
    classifier_relu: bool = True,
) -> np.ndarray:
    """SqueezeNet forward pass on NCHW ``x``; returns float64.

    pool_after: names after which a 3x3/2 max pool runs, e.g. ("conv1", "fire4", "fire8") for v1.0
    or ("conv1", "fire3", "fire5") for v1.1. conv1's kernel size comes from its weight (7x7 for
    v1.0, 3x3 for v1.1), with pad 0 and stride ``conv1_stride``. conv10_pad=1 reproduces the
    original v1.0 Caffe prototxt (a 1x1 conv with pad 1: its border is ReLU(bias), which then
    enters the global average). classifier_relu=False leaves conv10's scores as they are.

    Returns (N, classes) probabilities (softmax=True) or pre-softmax averages (softmax=False) when
    include_top, else the fire9 feature map (N, C, H, W). Dropout is the identity at inference.
    A single image must be given a batch axis: ``x[None]``.
    """
    unknown = set(pool_after) - _POOL_SITES
    if unknown:
        raise ValueError(f"unknown pool_after entries {sorted(unknown)}; allowed: {sorted(_POOL_SITES)}")
    if bypass not in _BYPASS_MODES:
        raise ValueError(f"bypass must be one of {_BYPASS_MODES}, got {bypass!r}")
    if rounding not in _ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {_ROUNDING_MODES}, got {rounding!r}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"forward wants x (N,C,H,W), got shape {x.shape}")

    h = _relu(conv2d(x, *_wb(weights, "conv1"), stride=conv1_stride, pad=0))
    if "conv1" in pool_after:
        h = max_pool(h, 3, 2, rounding)
    for i in _FIRE_INDICES:
        h = fire(weights, h, i, bypass)
        if f"fire{i}" in pool_after:
            h = max_pool(h, 3, 2, rounding)
    if not include_top:
        return h

    # drop9 would sit here; dropout is the identity at inference.
    h = conv2d(h, *_wb(weights, "conv10"), pad=conv10_pad)
    h = _relu(h) if classifier_relu else h
    logits = h.mean(axis=(2, 3))  # global average pool over H, W -> (N, classes)
    return _softmax(logits) if softmax else logits


# --------------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------------


def caffe_preprocess(path, size: int = 227, resize: int = 256) -> np.ndarray:
    """Load an image the way the Caffe SqueezeNet evaluation does; returns (3, size, size) float32 BGR.

    Steps: open with Pillow, convert to RGB; resize with Pillow's BILINEAR filter so the SHORTER
    side equals ``resize`` (the longer side is ``round(long * resize / short)``, aspect kept);
    center crop ``size`` x ``size``; cast to float32; reorder RGB -> BGR; subtract the Caffe mean
    (104, 117, 123) in B, G, R order; transpose HWC -> CHW.

    Crop-origin choice: left = (w - size) // 2 and top = (h - size) // 2, i.e. when the margin is
    odd the extra pixel goes to the right/bottom. (For the usual 256 -> 227 the margin 29 is odd,
    so this choice matters at the one-pixel level; other code may round the other way.)
    """
    # Lazy import: the rest of this module must work (and its self-tests run) without Pillow.
    from PIL import Image

    if resize < size:
        raise ValueError(f"resize ({resize}) must be at least the crop size ({size})")
    resample = getattr(Image, "Resampling", Image).BILINEAR  # Pillow >= 9.1 / older spelling

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        if w <= h:
            new_w, new_h = resize, max(resize, int(round(h * resize / w)))
        else:
            new_w, new_h = max(resize, int(round(w * resize / h))), resize
        img = img.resize((new_w, new_h), resample=resample)

    left, top = (new_w - size) // 2, (new_h - size) // 2
    arr = np.asarray(img, dtype=np.float32)[top : top + size, left : left + size]  # (size, size, 3) RGB
    arr = arr[:, :, ::-1] - CAFFE_BGR_MEAN  # RGB -> BGR, then the BGR mean
    return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)
