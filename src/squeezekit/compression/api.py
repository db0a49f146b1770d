"""Deep Compression of a SqueezeNet's weights, numpy only: prune, share, and describe the result.

The Keras parts (fine-tuning with masks, centroid fine-tuning) live in
:mod:`squeezekit.compression.finetune`; everything here works on Keras-layout weight arrays
(``{"fire2/squeeze1x1/kernel": (kh, kw, in, out), ...}``) so that it runs without a framework.
"""

from __future__ import annotations

import numpy as np

from squeezekit.compression.pruning import densities_for, magnitude_mask
from squeezekit.compression.sharing import share_weights
from squeezekit.formats.sqz import CompressedLayer
from squeezekit.config import SqueezeNetConfig
from squeezekit.graph import CLASSIFIER, build_plan, fold_batch_norm, hwio_to_oihw

__all__ = ["compress_arrays", "from_deep_compression", "layer_names", "layer_report", "prune_arrays"]


def layer_names(config: SqueezeNetConfig, arrays: dict[str, np.ndarray]) -> list[str]:
    """The convolutions of ``config``'s plan, in network order, after checking ``arrays`` holds each of them."""
    classes = int(arrays[f"{CLASSIFIER}/kernel"].shape[-1])
    expected = build_plan(config, classes).kernel_shapes()
    for name, shape in expected.items():
        if f"{name}/kernel" not in arrays:
            raise ValueError(f"no weights for layer {name!r} of the architecture")
        got = hwio_to_oihw(arrays[f"{name}/kernel"]).shape
        if got != shape:
            raise ValueError(f"layer {name!r} has weights of shape {got}, the architecture needs {shape}")
    return list(expected)


def prune_arrays(config: SqueezeNetConfig, arrays: dict[str, np.ndarray], spec) -> dict[str, np.ndarray]:
    """Boolean masks ``{"<layer>/kernel": mask}`` (Keras layout) keeping each layer's largest weights."""
    names = layer_names(config, arrays)
    densities = densities_for(names, spec)
    return {f"{name}/kernel": magnitude_mask(arrays[f"{name}/kernel"], densities[name]) for name in names}


def compress_arrays(
    config: SqueezeNetConfig,
    arrays: dict[str, np.ndarray],
    *,
    bits: int = 8,
    masks: dict[str, np.ndarray] | None = None,
    init: str = "optimal",
    rate: float = 0.0,
) -> list[CompressedLayer]:
    """Share the weights kept by ``masks`` (default: the non-zero ones) with k-means, layer by layer
    (``init``, ``rate``: see :func:`~squeezekit.compression.sharing.share_weights`)."""
    arrays = fold_batch_norm(arrays)
    layers = []
    for name in layer_names(config, arrays):
        kernel = hwio_to_oihw(arrays[f"{name}/kernel"].astype(np.float32))
        mask = hwio_to_oihw(masks[f"{name}/kernel"]) if masks is not None else kernel != 0
        codebook, indices, positions = share_weights(kernel, mask & np.isfinite(kernel), bits, init, rate)
        bias = arrays.get(f"{name}/bias", np.zeros(kernel.shape[0], np.float32)).astype(np.float32)
        layers.append(CompressedLayer(name, kernel.shape, codebook, bias, indices, positions))
    return layers


def from_deep_compression(dc_layers) -> list[CompressedLayer]:
    """Lossless :class:`CompressedLayer` s from the layers of a Deep Compression ``.net`` file.

    The stored codebooks and codes are kept as they are; the filler entries (and any entry whose
    shared value is +0.0) are dropped, because the ``.sqz`` position stream skips zeros without them.
    Decoding gives the release's weights bit for bit.
    """
    from squeezekit.weights.convert import squeezekit_layer_name

    layers = []
    for layer in dc_layers:
        positions, codes = layer.positions(), layer.codes.astype(np.int64)
        values = layer.codebook[codes]
        keep = values.view(np.uint32) != 0  # +0.0 only: a -0.0 weight is kept, to stay bit-exact
        layers.append(CompressedLayer(squeezekit_layer_name(layer.name), layer.shape, layer.codebook,
                                      layer.bias, codes[keep], positions[keep]))
    return layers


def layer_report(layers: list[CompressedLayer], report: dict) -> list[dict]:
    """One row per layer, as Deep Compression's Table: parameters, density, bits, and the bytes of
    indices, codebook and positions before Huffman coding (fixed-width indices, 4-bit gaps with
    fillers, as the Deep Compression format) and after (this file)."""
    rows = []
    for layer in layers:
        sizes = report["layers"][layer.name]
        k = layer.codebook.size
        bits = max(1, int(np.ceil(np.log2(k))))
        gaps = np.diff(np.concatenate([[-1], layer.positions])) - 1
        fixed_entries = int(layer.indices.size + (gaps // 16).sum())  # DC fillers for gaps over 15
        rows.append({
            "layer": layer.name, "parameters": layer.size, "density": layer.density, "bits": bits,
            "codebook_bytes": sizes["codebook"], "bias_bytes": sizes["bias"],
            "indices_bytes_fixed": (fixed_entries * bits + 7) // 8,
            "positions_bytes_fixed": 0 if layer.density == 1 else (fixed_entries + 1) // 2,
            "indices_bytes": sizes["indices"], "positions_bytes": sizes["positions"],
            "total_bytes": sum(sizes.values()),
        })
    return rows
