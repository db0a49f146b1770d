"""Magnitude pruning (Deep Compression section 2, after Han et al. 2015): per-layer density targets.

A *pruning spec* says which fraction of each layer's weights to keep (its density). Written on the
command line as ``0.4`` (every layer), ``conv1=1,fire*/expand3x3=0.3,*=0.45`` (shell-style patterns
over layer names, first match wins; layers matching nothing stay dense) or ``deep-compression``: the
per-layer densities of the published Deep Compression SqueezeNet (v1.0), which apply by name to any
SqueezeNet with the same Fire modules.
"""

from __future__ import annotations

import fnmatch

import numpy as np

__all__ = ["DEEP_COMPRESSION_DENSITIES", "densities_for", "magnitude_mask", "parse_prune_spec"]

# Kept fraction of every layer of compressed_SqueezeNet.net (non-zero weights over the layer's weights,
# measured from the file): conv1 and most 1x1 layers are nearly dense, the 3x3 expand layers keep a
# third, the classifier a fifth; 33.4 % overall.
DEEP_COMPRESSION_DENSITIES = {
    "conv1": 0.985, "fire2/squeeze1x1": 0.995, "fire2/expand1x1": 0.996, "fire2/expand3x3": 0.330,
    "fire3/squeeze1x1": 0.995, "fire3/expand1x1": 0.999, "fire3/expand3x3": 0.330,
    "fire4/squeeze1x1": 0.997, "fire4/expand1x1": 0.994, "fire4/expand3x3": 0.330,
    "fire5/squeeze1x1": 0.996, "fire5/expand1x1": 0.993, "fire5/expand3x3": 0.330,
    "fire6/squeeze1x1": 0.990, "fire6/expand1x1": 0.499, "fire6/expand3x3": 0.329,
    "fire7/squeeze1x1": 0.499, "fire7/expand1x1": 0.991, "fire7/expand3x3": 0.330,
    "fire8/squeeze1x1": 0.992, "fire8/expand1x1": 0.500, "fire8/expand3x3": 0.299,
    "fire9/squeeze1x1": 0.500, "fire9/expand1x1": 0.995, "fire9/expand3x3": 0.300,
    "conv10": 0.200,
}


def parse_prune_spec(spec: str) -> list[tuple[str, float]] | str:
    """``[(pattern, density), ...]`` from a spec string, or ``"deep-compression"``."""
    spec = spec.strip()
    if spec in ("deep-compression", "dc"):
        return "deep-compression"
    rules = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        pattern, _, value = part.rpartition("=")
        try:
            density = float(value)
        except ValueError:
            raise ValueError(f"--prune {spec!r}: {part!r} is not DENSITY or PATTERN=DENSITY") from None
        if not 0 < density <= 1:
            raise ValueError(f"--prune {spec!r}: density {density} must be in (0, 1] (the kept fraction)")
        rules.append((pattern or "*", density))
    if not rules:
        raise ValueError("--prune: empty spec")
    return rules


def densities_for(layer_names: list[str], spec: str | list[tuple[str, float]] | None) -> dict[str, float]:
    """The density of every layer under ``spec`` (None: every layer dense)."""
    if spec is None:
        return {name: 1.0 for name in layer_names}
    rules = parse_prune_spec(spec) if isinstance(spec, str) else spec
    if rules == "deep-compression":
        return {name: _dc_density(name) for name in layer_names}
    densities = {}
    for name in layer_names:
        densities[name] = next((d for pattern, d in rules if fnmatch.fnmatchcase(name, pattern)), 1.0)
    return densities


def _dc_density(name: str) -> float:
    if name in DEEP_COMPRESSION_DENSITIES:
        return DEEP_COMPRESSION_DENSITIES[name]
    if name.endswith("_bypass"):  # complex-bypass 1x1 convs: as the sparsest 1x1 layers of the release
        return 0.5
    raise ValueError(f"the deep-compression prune spec has no density for layer {name!r}")


def magnitude_mask(weights: np.ndarray, density: float) -> np.ndarray:
    """Boolean mask keeping the ``round(density * size)`` largest-magnitude weights (at least one)."""
    if not 0 < density <= 1:
        raise ValueError(f"Expected a density in (0, 1]. Received: {density}")
    flat = np.abs(np.asarray(weights, dtype=np.float32)).ravel()
    keep = max(1, int(round(density * flat.size)))
    mask = np.zeros(flat.size, dtype=bool)
    if keep >= flat.size:
        mask[:] = True
    else:
        mask[np.argpartition(-flat, keep - 1)[:keep]] = True
    return mask.reshape(np.shape(weights))
