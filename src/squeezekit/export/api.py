"""``export_model``: a trained or pretrained model to a verified LiteRT, ONNX or SavedModel artefact."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from squeezekit.export.check import DEFAULT_THRESHOLDS, CheckReport, compare, predict_in_batches

FORMATS = {"litert": ".tflite", "onnx": ".onnx", "saved_model": ""}
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
_SUPPORTED = {
    "litert": ("none", "float16", "dynamic", "int8"),
    "onnx": ("none", "dynamic", "int8"),
    "saved_model": ("none",),
}


@dataclass
class ExportResult:
    path: Path
    format: str
    quantize: str
    size_bytes: int
    check: CheckReport
    metadata_path: Path | None = None

    @property
    def passed(self) -> bool:
        return self.check.passed

    def to_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "quantize": self.quantize,
                "size_bytes": self.size_bytes, "check": self.check.to_dict(),
                "metadata": str(self.metadata_path) if self.metadata_path else None}


def failed_path(path: Path) -> Path:
    """Where an artefact that failed its check is kept: ``model.int8.tflite`` -> ``model.int8.FAILED-CHECK.tflite``."""
    return path.with_name(f"{path.stem}.FAILED-CHECK{path.suffix}") if path.suffix else path.with_name(f"{path.name}.FAILED-CHECK")


def _directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def validate_options(format: str, quantize: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"Expected --format to be one of {sorted(FORMATS)}. Received: {format!r}")
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"Expected --quantize to be one of {list(QUANTIZATIONS)}. Received: {quantize!r}")
    if quantize not in _SUPPORTED[format]:
        raise ValueError(f"--quantize {quantize} is not available for --format {format} (available: {', '.join(_SUPPORTED[format])})")


def export_model(
    model: str,
    format: str = "litert",
    *,
    quantize: str = "none",
    calibration: str | os.PathLike | None = None,
    check: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    min_agreement: float | None = None,
    calibration_count: int = 200,
    input_size: int | None = None,
) -> ExportResult:
    """Export, then check the artefact in its own runtime against the Keras model.

    Calibration and check images come from ``calibration`` (a folder or zip of images; default: the
    Imagenette train images of ``SQUEEZEKIT_DATA_DIR``, else the sample photos); ``check`` names other
    images for the check. An artefact below ``min_agreement`` top-1 agreement (default by precision:
    see ``DEFAULT_THRESHOLDS``) is renamed by ``failed_path`` and the result says it failed.
    """
    validate_options(format, quantize)
    threshold = DEFAULT_THRESHOLDS[quantize] if min_agreement is None else float(min_agreement)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"Expected --min-agreement in [0, 1]. Received: {min_agreement}")

    from squeezekit import __version__
    from squeezekit.export.calibration import calibration_images
    from squeezekit.metadata import write_sidecar
    from squeezekit.models.loading import load_model

    keras_model, metadata = load_model(model, input_size=input_size)
    preprocessing = metadata.preprocessing
    input_size = (preprocessing.crop, preprocessing.crop)
    stem = Path(model).stem if Path(model).exists() else model
    suffix = "" if quantize == "none" else f".{quantize}"
    path = Path(output) if output else Path(f"{stem}{suffix}{FORMATS[format]}")
    if format != "saved_model" and path.suffix != FORMATS[format]:
        raise ValueError(f"{path}: the file name must end with {FORMATS[format]} for --format {format}")
    path.parent.mkdir(parents=True, exist_ok=True)

    calibration_set = calibration_images(calibration, preprocessing, count=calibration_count)
    check_set = calibration_images(check, preprocessing, count=calibration_count) if check else calibration_set
    reference = predict_in_batches(keras_model.predict_on_batch, check_set)
    extra = {**metadata.extra, "source_model": model, "format": format, "quantize": quantize,
             "input_size": [*input_size, 3], "squeezekit_version": __version__}
    artefact_metadata = type(metadata)(metadata.labels, preprocessing, metadata.source, metadata.label_set, extra)

    if format == "litert":
        from squeezekit.export.litert import export_litert

        from squeezekit.runtime.litert_metadata import write_litert_metadata

        outputs = export_litert(keras_model, path, quantize=quantize, calibration=calibration_set, input_size=input_size)
        artefact_metadata.extra["outputs"] = outputs
        write_litert_metadata(path, artefact_metadata.to_dict())
        metadata_path = None
    elif format == "onnx":
        metadata_path = None
        _export_onnx(keras_model, model, path, quantize, calibration_set, input_size, artefact_metadata.to_dict())
    else:
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        keras_model.export(os.fspath(path), format="tf_saved_model", verbose=False)
        metadata_path = write_sidecar(path, artefact_metadata)

    candidate = predict_in_batches(_runner(path, format, artefact_metadata.extra.get("outputs")), check_set)
    report = compare(reference, candidate, threshold)
    if not report.passed:
        target = failed_path(path)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        path.rename(target)
        if metadata_path is not None:
            metadata_path = metadata_path.rename(target.with_name(target.name + ".json"))
        path = target
    return ExportResult(path, format, quantize, _directory_size(path), report, metadata_path)


def _export_onnx(keras_model, model_name, path, quantize, calibration_set, input_size, metadata) -> None:
    import tempfile

    import keras
    import onnx

    from squeezekit.export.onnx_graph import build_onnx_model

    config = _config_of(model_name, metadata)
    arrays = {w.path: keras.ops.convert_to_numpy(w) for w in keras_model.weights}
    if config is None:
        raise ValueError(f"{model_name}: its architecture config is unknown (no squeezekit metadata), so it cannot be written as ONNX")
    include_softmax = keras_model.layers[-1].name == "predictions"
    graph = build_onnx_model(config, arrays, input_size=input_size, include_softmax=include_softmax, metadata=metadata)
    if quantize == "none":
        onnx.save(graph, os.fspath(path))
        return
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        onnx.save(graph, os.fspath(fp32))
        if quantize == "int8":
            from squeezekit.export.onnx_quantize import quantize_onnx_int8

            quantize_onnx_int8(fp32, path, calibration_set)
        else:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(os.fspath(fp32), os.fspath(path), weight_type=QuantType.QInt8)
    quantized = onnx.load(os.fspath(path))
    onnx.helper.set_model_props(quantized, {"squeezekit": json.dumps(metadata)})
    onnx.save(quantized, os.fspath(path))


def _config_of(model_name: str, metadata: dict):
    from squeezekit.config import SqueezeNetConfig, get_preset
    from squeezekit.runtime.pretrained import is_pretrained_name

    if is_pretrained_name(model_name):
        from squeezekit.weights import get_weights_entry

        entry = get_weights_entry(model_name)
        return get_preset(entry.arch).replace(**entry.config_overrides)
    stored = metadata.get("extra", {}).get("config")
    return SqueezeNetConfig.from_dict(stored) if stored else None


def _runner(path: Path, format: str, outputs: str | None):
    if format == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(os.fspath(path)).signatures["serve"]
        return lambda batch: next(iter(serve(tf.constant(batch)).values())).numpy()
    from squeezekit.runtime.engines import open_engine, softmax

    engine = open_engine(path)
    return (lambda batch: softmax(engine(batch))) if outputs == "scores" else engine
