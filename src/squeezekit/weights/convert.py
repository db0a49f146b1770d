"""Map Caffe-layout weights onto squeezekit's Keras models (and load them, cached).

Every reader returns ``{caffe layer name: (weights (out, in, kh, kw), bias (out,))}``. Conversion
renames the layers to squeezekit's (``fire2/conv1x1_1`` of the Deep Compression release is
``fire2/squeeze1x1``; its ``conv_final`` is ``conv10``) and transposes kernels to Keras' HWIO.
Converted arrays are cached as ``.npz`` under ``SQUEEZEKIT_HOME/converted``, keyed by the source
files' hashes, so the second load skips decoding.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from squeezekit._resources import cache_dir, resolve
from squeezekit.errors import WeightFileError
from squeezekit.graph import oihw_to_hwio
from squeezekit.weights.registry import PretrainedWeights


# Deep Compression release names -> squeezekit names.
_RENAMES = [
    (re.compile(r"^(fire\d+)/conv1x1_1$"), r"\1/squeeze1x1"),
    (re.compile(r"^(fire\d+)/conv1x1_2$"), r"\1/expand1x1"),
    (re.compile(r"^(fire\d+)/conv3x3_2$"), r"\1/expand3x3"),
    (re.compile(r"^conv_final$"), "conv10"),
]


def squeezekit_layer_name(caffe_name: str) -> str:
    for pattern, replacement in _RENAMES:
        if pattern.match(caffe_name):
            return pattern.sub(replacement, caffe_name)
    return caffe_name


def caffe_to_keras_arrays(caffe: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """``{"fire2/squeeze1x1/kernel": HWIO array, "fire2/squeeze1x1/bias": ...}`` from Caffe layers."""
    arrays = {}
    for name, (weights, bias) in caffe.items():
        layer = squeezekit_layer_name(name)
        arrays[f"{layer}/kernel"] = oihw_to_hwio(np.asarray(weights, dtype=np.float32))
        arrays[f"{layer}/bias"] = np.asarray(bias, dtype=np.float32)
    return arrays


def read_source(entry: PretrainedWeights) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Resolve (find or download, hash-check) and decode an entry's source files."""
    paths = {role: resolve(file) for role, file in entry.files.items()}
    if entry.reader == "deep_compression":
        from squeezekit.weights.deep_compression import read_deep_compression

        return read_deep_compression(paths["net"], paths["prototxt"])
    if entry.reader == "openvino_ir":
        from squeezekit.weights.openvino_ir import read_openvino_ir

        return read_openvino_ir(paths["xml"], paths["bin"])
    if entry.reader == "caffemodel":
        from squeezekit.weights.caffemodel import read_caffemodel

        return read_caffemodel(paths["caffemodel"])
    raise ValueError(f"{entry.name}: unknown reader {entry.reader!r}")


def _cache_path(entry: PretrainedWeights) -> Path:
    return cache_dir() / "converted" / f"{entry.name}-{entry.checksum[:16]}.npz"


def pretrained_arrays(entry: PretrainedWeights) -> dict[str, np.ndarray]:
    """Keras-layout arrays of an entry, from the converted cache or converted now (and cached).

    The cached ``.npz`` has a record of its source and checksum (``squeezekit._cache``): a truncated,
    altered or foreign file under the right name is rebuilt once from the verified sources."""
    from squeezekit._cache import cached_file

    converted = {}

    def build(path: Path) -> None:
        converted.update(caffe_to_keras_arrays(read_source(entry)))
        buffer = io.BytesIO()
        np.savez(buffer, **converted)
        path.write_bytes(buffer.getvalue())

    path, _ = cached_file(_cache_path(entry), f"converted {entry.name} {entry.checksum}", build,
                          what="cache of converted weights")
    if converted:
        return converted
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:  # changed since its checksum was read
        raise WeightFileError(path, f"the cache of converted weights cannot be read ({error})") from None


def assign_arrays(model, arrays: dict[str, np.ndarray], *, include_top: bool = True, source: str = "weights") -> None:
    """Assign arrays keyed by weight path to a Keras model, checking names and shapes first."""
    wanted = {w.path: w for w in model.weights}
    available = {k: v for k, v in arrays.items() if include_top or not k.startswith("conv10/")}
    missing = sorted(set(wanted) - set(available))
    extra = sorted(set(available) - set(wanted))
    if missing or extra:
        raise WeightFileError(
            source, f"layers do not match the model {model.name!r}: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for path, variable in wanted.items():
        if tuple(variable.shape) != available[path].shape:
            raise WeightFileError(
                source, f"{path} has shape {available[path].shape}, the model expects {tuple(variable.shape)}"
            )
    for path, variable in wanted.items():
        variable.assign(available[path])


def load_pretrained_weights(model, entry: PretrainedWeights, *, include_top: bool = True) -> None:
    """Load an entry's weights into a model built for it."""
    assign_arrays(model, pretrained_arrays(entry), include_top=include_top, source=entry.name)
