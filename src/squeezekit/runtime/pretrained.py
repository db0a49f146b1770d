"""Artefacts for pretrained names, built by the runtime itself: no TensorFlow, no Keras.

The converted weights (numpy) become an ONNX graph (``onnx``), which ONNX Runtime's own tools quantise
to int8 with calibration images; the int8 model is used only if it agrees with the float32 one
(top-1 agreement at least ``INT8_THRESHOLD`` on the calibration images), else the float32 model is. Both are cached in
``SQUEEZEKIT_HOME/artefacts``, keyed by the weights' checksum, each with its record (``squeezekit._cache``):
a damaged or stale artefact is rebuilt once; the int8 check report lives in the int8 model's record.
"""

from __future__ import annotations

import json
from pathlib import Path

from squeezekit._cache import cached_file
from squeezekit._resources import cache_dir
from squeezekit.runtime.check import DEFAULT_THRESHOLDS

INT8_THRESHOLD = DEFAULT_THRESHOLDS["int8"]


def _artefact_dir() -> Path:
    return cache_dir() / "artefacts"


def runtime_metadata(entry, precision: str, check: dict | None = None) -> dict:
    from squeezekit.formats.metadata import imagenet_metadata

    metadata = imagenet_metadata(entry.name, entry.preprocessing).to_dict()
    metadata["extra"] = {"source_model": entry.name, "precision": precision, "input_size": list(entry.input_shape),
                         "check": check}
    return metadata


def build_fp32(entry, path: Path) -> Path:
    from squeezekit.registry import get_preset
    from squeezekit.formats.onnx import build_onnx_model
    from squeezekit.weights.convert import pretrained_arrays

    config = get_preset(entry.arch).replace(**entry.config_overrides)
    model = build_onnx_model(
        config, pretrained_arrays(entry), input_size=entry.input_shape[:2], metadata=runtime_metadata(entry, "float32")
    )
    path.write_bytes(model.SerializeToString())
    return path


def build_int8(entry, fp32_path: Path, path: Path, weight_bits: int) -> tuple[Path, dict]:
    """Quantise, check against float32, and return the path and the check report."""
    import tempfile

    import onnx

    from squeezekit.runtime.calibration import calibration_images
    from squeezekit.runtime.check import compare, predict_in_batches
    from squeezekit.runtime.quantize import quantize_onnx_int8
    from squeezekit.runtime.engines import OnnxEngine

    images = calibration_images(None, entry.preprocessing)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        quantized = quantize_onnx_int8(fp32_path, Path(scratch) / "int8.onnx", images, weight_bits)
        report = compare(predict_in_batches(OnnxEngine(fp32_path), images),
                         predict_in_batches(OnnxEngine(quantized), images), INT8_THRESHOLD)
        model = onnx.load(quantized)
        from onnx import helper

        metadata = runtime_metadata(entry, "int8", report.to_dict())
        metadata["extra"]["weight_bits"] = weight_bits
        helper.set_model_props(model, {"squeezekit": json.dumps(metadata)})
        path.write_bytes(model.SerializeToString())
    return path, report.to_dict()


def pretrained_artefact(name: str, precision: str = "auto") -> Path:
    """Path of a cached ONNX artefact for a pretrained name, built on first use.

    ``precision`` is "float32", "int8", or "auto": int8 when it passed its check, else float32.
    """
    from squeezekit import __version__
    from squeezekit.registry import get_pretrained
    from squeezekit.runtime.quantize import INT8_FORM, int8_weight_bits

    if precision not in ("auto", "float32", "int8"):
        raise ValueError(f"Expected precision 'auto', 'float32' or 'int8'. Received: {precision!r}")
    entry = get_pretrained(name)
    stem = f"{entry.name}-{entry.checksum[:12]}"
    built_from = f"{entry.name} {entry.checksum} squeezekit {__version__}"
    fp32, _ = cached_file(_artefact_dir() / f"{stem}-float32.onnx", f"float32 ONNX of {built_from}",
                          lambda path: build_fp32(entry, path) and None, what="float32 ONNX model")
    if precision == "float32":
        return fp32
    # The weights' range follows this CPU (see int8_weight_bits), so it is part of the cache key.
    weight_bits = int8_weight_bits()
    int8, report = cached_file(_artefact_dir() / f"{stem}-int8.onnx", f"int8 ONNX ({weight_bits}-bit weights; {INT8_FORM}) of {built_from}",
                               lambda path: build_int8(entry, fp32, path, weight_bits)[1], what="int8 ONNX model",
                               valid_report=lambda report: isinstance(report.get("passed"), bool))
    if report["passed"]:
        return int8
    if precision == "int8":
        raise ValueError(f"{name}: the int8 model failed its check ({report}); use float32")
    return fp32
