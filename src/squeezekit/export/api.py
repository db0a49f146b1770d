"""``export_model``: a trained or pretrained model to a verified LiteRT, ONNX, SavedModel or TFLM artefact."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from squeezekit._outputs import check_target, discard, publish, staging_path
from squeezekit.errors import ParameterError, literal
from squeezekit.runtime.check import DEFAULT_THRESHOLDS, CheckReport, compare, predict_in_batches

FORMATS = {"litert": ".tflite", "onnx": ".onnx", "saved_model": "", "tflm": ".tflm"}
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
_KINDS = {"litert": "LiteRT model", "onnx": "ONNX model", "saved_model": "SavedModel", "tflm": "TFLM export folder"}
FOLDER_FORMATS = ("saved_model", "tflm")
# What a SavedModel folder holds; a folder with anything else in it is the user's, even with --overwrite.
_SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb"}


def _is_saved_model(path: Path) -> bool:
    return (path.is_dir() and not path.is_symlink() and (path / "saved_model.pb").is_file()
            and all(child.name in _SAVED_MODEL_ENTRIES for child in path.iterdir()))


def _is_tflm_folder(path: Path) -> bool:
    from squeezekit.export.tflm import is_tflm_folder

    return is_tflm_folder(path)


_IS_SAME_KIND = {"litert": lambda p: p.is_file(), "onnx": lambda p: p.is_file(), "saved_model": _is_saved_model,
                 "tflm": _is_tflm_folder}
_SUPPORTED = {
    "litert": ("none", "float16", "dynamic", "int8"),
    "onnx": ("none", "dynamic", "int8"),
    "saved_model": ("none",),
    "tflm": ("int8",),  # microcontrollers run full-integer models; "none" is read as int8 for tflm
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
        raise ParameterError(f"Expected {{format}} to be one of {sorted(FORMATS)}. Received: {{format}}={literal(format)}")
    if quantize not in QUANTIZATIONS:
        raise ParameterError(f"Expected {{quantize}} to be one of {list(QUANTIZATIONS)}. Received: {{quantize}}={literal(quantize)}")
    if quantize not in _SUPPORTED[format]:
        raise ParameterError(f"{{quantize}} {quantize} is not available for {{format}} {format} "
                             f"(available: {', '.join(_SUPPORTED[format])})")


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
    overwrite: bool = False,
    max_arena: int | None = None,
) -> ExportResult:
    """Export, then check the artefact in its own runtime against the Keras model.

    ``model`` is a pretrained name, a ``.keras`` or a ``.sqz`` file. Calibration and check images come
    from ``calibration`` (a folder or zip of images; default: the Imagenette train images of
    ``SQUEEZEKIT_DATA_DIR``, else the sample photos); ``check`` names other images for the check. An
    artefact below ``min_agreement`` top-1 agreement (default by precision: see ``DEFAULT_THRESHOLDS``)
    is kept under ``failed_path`` and the result says it failed. The artefact is written beside its
    target and moved into place only once it passed, so an existing file survives any failure; an
    existing target is replaced only with ``overwrite`` (a folder only when it is a SavedModel).
    """
    from squeezekit.formats.metadata import sidecar_path, write_sidecar
    from squeezekit.opener import open_model
    from squeezekit.runtime.calibration import calibration_images

    if format == "tflm" and quantize == "none":
        quantize = "int8"
    validate_options(format, quantize)
    if max_arena is not None and (format != "tflm" or max_arena < 1):
        raise ParameterError("{max_arena} takes a positive number of bytes, with {format} tflm only")
    threshold = DEFAULT_THRESHOLDS[quantize] if min_agreement is None else float(min_agreement)
    if not 0.0 <= threshold <= 1.0:
        raise ParameterError(f"Expected {{min_agreement}} in [0, 1]. Received: {{min_agreement}}={min_agreement}")
    path = _output_path(model, format, quantize, output)
    check_target(path, overwrite=overwrite, kind=_KINDS[format], is_same_kind=_IS_SAME_KIND[format])
    if format == "saved_model":
        check_target(sidecar_path(path), overwrite=overwrite, kind="model metadata file")
    opened = open_model(model, "keras", purpose="squeezekit export", input_size=input_size)
    preprocessing = opened.metadata.preprocessing
    calibration_set = calibration_images(calibration, preprocessing, count=calibration_count)
    check_set = calibration_images(check, preprocessing, count=calibration_count) if check else calibration_set
    reference = predict_in_batches(opened.model.predict_on_batch, check_set)
    metadata = _artefact_metadata(opened, model, format, quantize)
    staged, staged_sidecar = staging_path(path), None
    try:
        _write_artefact(opened, staged, format, quantize, calibration_set, metadata, max_arena, check_set)
        candidate = predict_in_batches(_runner(staged, format, metadata.extra.get("outputs")), check_set)
        report = compare(reference, candidate, threshold)
        if not report.passed:
            path = failed_path(path)  # the good file at the target, if any, stays
        if format == "saved_model":  # its metadata file (X.json for X), staged before the model moves in
            staged_sidecar = write_sidecar(staging_path(path), metadata)
        publish(staged, path)
        if staged_sidecar is not None:
            publish(staged_sidecar, sidecar_path(path))
    finally:
        discard(staged)
        if staged_sidecar is not None:
            discard(staged_sidecar)
    metadata_path = sidecar_path(path) if format == "saved_model" else None
    return ExportResult(path, format, quantize, _directory_size(path), report, metadata_path)


def _output_path(model: str, format: str, quantize: str, output) -> Path:
    stem = Path(model).stem if Path(model).exists() else model
    suffix = "" if quantize == "none" else f".{quantize}"
    path = Path(output) if output else Path(f"{stem}{suffix}{FORMATS[format]}")
    if format not in FOLDER_FORMATS and path.suffix != FORMATS[format]:
        shown = str(path).replace("{", "{{").replace("}", "}}")
        raise ParameterError(f"{shown}: the file name must end with {FORMATS[format]} for {{format}} {format}")
    return path


def _artefact_metadata(opened, model: str, format: str, quantize: str):
    from squeezekit import __version__

    metadata = opened.metadata
    crop = metadata.preprocessing.crop
    extra = {**metadata.extra, "source_model": model, "format": format, "quantize": quantize,
             "input_size": [crop, crop, 3], "squeezekit_version": __version__}
    return type(metadata)(metadata.labels, metadata.preprocessing, metadata.source, metadata.label_set, extra)


def _write_artefact(opened, path: Path, format: str, quantize: str, calibration_set, metadata, max_arena=None,
                    check_set=None) -> None:
    """Write the artefact at ``path``, with its metadata inside (LiteRT, ONNX; a SavedModel's goes beside it;
    a TFLM folder holds its C sources and report)."""
    input_size = (metadata.preprocessing.crop,) * 2
    if format == "tflm":
        from squeezekit.export.tflm import write_tflm
        from squeezekit.graph import build_plan

        macs = build_plan(opened.config, len(metadata.labels), input_size=input_size[0]).macs if opened.config else None
        metadata.extra["outputs"] = "scores"
        write_tflm(opened.model, path, calibration=calibration_set, input_size=input_size, metadata=metadata, macs=macs,
                   source=metadata.extra["source_model"], max_arena=max_arena, check_images=check_set[:50])
        return
    if format == "litert":
        from squeezekit.export.litert import export_litert
        from squeezekit.formats.litert_metadata import write_litert_metadata

        metadata.extra["outputs"] = export_litert(opened.model, path, quantize=quantize, calibration=calibration_set,
                                                  input_size=input_size)
        write_litert_metadata(path, metadata.to_dict())
    elif format == "onnx":
        if opened.config is None:
            raise ValueError(f"{opened.ref.spec}: its architecture config is unknown (no squeezekit metadata), "
                             "so it cannot be written as ONNX")
        _export_onnx(opened.model, opened.config, path, quantize, calibration_set, input_size, metadata.to_dict())
    else:
        opened.model.export(os.fspath(path), format="tf_saved_model", verbose=False)


def _export_onnx(keras_model, config, path, quantize, calibration_set, input_size, metadata) -> None:
    import tempfile

    import keras
    import onnx

    from squeezekit.formats.onnx import build_onnx_model

    arrays = {w.path: keras.ops.convert_to_numpy(w) for w in keras_model.weights}
    include_softmax = keras_model.layers[-1].name == "predictions"
    graph = build_onnx_model(config, arrays, input_size=input_size, include_softmax=include_softmax, metadata=metadata)
    if quantize == "none":
        onnx.save(graph, os.fspath(path))
        return
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        onnx.save(graph, os.fspath(fp32))
        if quantize == "int8":
            from squeezekit.runtime.quantize import int8_weight_bits, quantize_onnx_int8

            # 7-bit weights where this CPU's ONNX Runtime kernels would saturate 8-bit ones; recorded
            # because a file made here for a VNNI or Arm machine loses a little precision for it.
            metadata["extra"]["weight_bits"] = int8_weight_bits()
            quantize_onnx_int8(fp32, path, calibration_set, metadata["extra"]["weight_bits"])
        else:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(os.fspath(fp32), os.fspath(path), weight_type=QuantType.QInt8)
    quantized = onnx.load(os.fspath(path))
    onnx.helper.set_model_props(quantized, {"squeezekit": json.dumps(metadata)})
    onnx.save(quantized, os.fspath(path))


def _runner(path: Path, format: str, outputs: str | None):
    if format == "tflm":
        from squeezekit.export.tflm import tflm_runner

        return tflm_runner(path)
    if format == "saved_model":
        from squeezekit.opener import SavedModelEngine

        return SavedModelEngine(path)
    from squeezekit.runtime.engines import open_engine, softmax

    if format == "litert":
        from squeezekit.export.litert import check_litert_loads

        check_litert_loads(path)
    engine = open_engine(path)
    return (lambda batch: softmax(engine(batch))) if outputs == "scores" else engine
