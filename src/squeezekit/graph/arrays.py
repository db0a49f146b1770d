"""Weight arrays keyed by Keras weight path (``"fire2/squeeze1x1/kernel"``): layout and batch-norm folding.

squeezekit's own layout is Keras': kernels are HWIO ``(kh, kw, in, out)``. Caffe, ONNX and the ``.sqz``
format store OIHW ``(out, in, kh, kw)``; these two helpers are the only place that knows the order.
"""

from __future__ import annotations

import numpy as np

BATCH_NORM_EPSILON = 1e-3  # Keras' BatchNormalization default, which squeezekit's builders use


def hwio_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """``(kh, kw, in, out)`` -> ``(out, in, kh, kw)``, contiguous."""
    return np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)))


def oihw_to_hwio(weight: np.ndarray) -> np.ndarray:
    """``(out, in, kh, kw)`` -> ``(kh, kw, in, out)``, contiguous."""
    return np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)))


def fold_batch_norm(arrays: dict[str, np.ndarray], epsilon: float = BATCH_NORM_EPSILON) -> dict[str, np.ndarray]:
    """Arrays with every ``<conv>_bn`` batch norm folded into its convolution's kernel and bias.

    Inference-time batch norm is ``gamma * (x - mean) / sqrt(variance + epsilon) + beta``: a per-channel
    scale and shift, which a preceding convolution absorbs exactly.
    """
    folded = {key: value for key, value in arrays.items() if "_bn/" not in key}
    for key in arrays:
        if key.endswith("_bn/gamma"):
            layer = key[: -len("_bn/gamma")]
            kernel = arrays[f"{layer}/kernel"].astype(np.float32)
            bias = arrays.get(f"{layer}/bias", np.zeros(kernel.shape[-1], np.float32)).astype(np.float32)
            gamma, beta = arrays[f"{layer}_bn/gamma"], arrays[f"{layer}_bn/beta"]
            mean, variance = arrays[f"{layer}_bn/moving_mean"], arrays[f"{layer}_bn/moving_variance"]
            scale = (gamma / np.sqrt(variance + epsilon)).astype(np.float32)
            folded[f"{layer}/kernel"] = kernel * scale
            folded[f"{layer}/bias"] = ((bias - mean) * scale + beta).astype(np.float32)
    return folded
