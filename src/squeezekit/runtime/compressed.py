"""Run a ``.sqz`` (Deep-Compressed) model without TensorFlow: decode with numpy, build an ONNX graph
with the ``onnx`` package, run it with ONNX Runtime.

The graph is built once per file and cached under ``SQUEEZEKIT_HOME/artefacts/sqz``, keyed by the
file's SHA-256 (decoding and building took most of a ``predict`` start-up); the metadata travels inside
the cached ONNX model, so a cached start reads nothing of the ``.sqz`` but its checksum.
"""

from __future__ import annotations

import os
from pathlib import Path

from squeezekit.formats.metadata import ModelMetadata


def sqz_metadata(stored: dict, source: str | os.PathLike = "<.sqz header>") -> ModelMetadata:
    """The model metadata of a ``.sqz`` header, checked; ImageNet labels are resolved from the class list."""
    from squeezekit._schema import parse_document

    def parse(values):
        if isinstance(values, dict) and values.get("label_set") == "imagenet-1k" and not values.get("labels"):
            from squeezekit.labels import imagenet_labels

            values = {**values, "labels": [list(label) for label in imagenet_labels()]}
        return ModelMetadata.from_dict(values)

    return parse_document(source, stored, parse, "model metadata in the header")


def onnx_bytes(config: dict, arrays: dict, metadata: dict | None = None) -> bytes:
    """The serialised float32 ONNX model (free input size) of a config and its Keras-layout arrays."""
    from squeezekit.config import SqueezeNetConfig
    from squeezekit.formats.onnx import build_onnx_model

    model = build_onnx_model(SqueezeNetConfig.from_dict(config), arrays, input_size=None, metadata=metadata)
    return model.SerializeToString()


def sqz_onnx(path: str | os.PathLike) -> Path:
    """The cached float32 ONNX model of a ``.sqz`` file, built on first use (see the module docstring)."""
    from squeezekit import __version__
    from squeezekit._cache import cached_file
    from squeezekit._resources import cache_dir, sha256_of
    from squeezekit.formats.sqz import check_file_size, read_sqz

    check_file_size(path)
    digest = sha256_of(path)

    def build(destination: Path) -> None:
        compressed = read_sqz(path)
        metadata = sqz_metadata(compressed.metadata, path)
        destination.write_bytes(onnx_bytes(compressed.config, compressed.arrays(), metadata.to_dict()))

    cached, _ = cached_file(cache_dir() / "artefacts" / "sqz" / f"{digest[:20]}-float32.onnx",
                            f"float32 ONNX of the .sqz file {digest}, squeezekit {__version__}", build,
                            what="float32 ONNX model of a .sqz file")
    return cached


def open_sqz(path: str | os.PathLike, threads: int | None = None):
    """``(OnnxEngine, ModelMetadata)`` of a ``.sqz`` file."""
    from squeezekit.runtime.engines import OnnxEngine

    engine = OnnxEngine(sqz_onnx(path), threads)
    return engine, ModelMetadata.from_dict(engine.metadata)
