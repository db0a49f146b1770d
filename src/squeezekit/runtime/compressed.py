"""Run a ``.sqz`` (Deep-Compressed) model without TensorFlow: decode with numpy, build an ONNX graph
in memory with the ``onnx`` package, run it with ONNX Runtime."""

from __future__ import annotations

import os

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


def open_sqz(path: str | os.PathLike, threads: int | None = None):
    """``(OnnxEngine, ModelMetadata)`` of a ``.sqz`` file."""
    from squeezekit.formats.sqz import read_sqz
    from squeezekit.runtime.engines import OnnxEngine

    compressed = read_sqz(path)
    metadata = sqz_metadata(compressed.metadata, path)
    engine = OnnxEngine(onnx_bytes(compressed.config, compressed.arrays(), metadata.to_dict()), threads)
    return engine, metadata
