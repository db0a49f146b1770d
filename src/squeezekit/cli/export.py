"""Export a model to LiteRT, ONNX or a TensorFlow SavedModel, then check it in its own runtime.

MODEL is a pretrained name (squeezenet1_0, squeezenet1_1), a saved .keras file or a .sqz file. Quantised exports
are calibrated on --calibration images (a folder or zip; default: the Imagenette train images of
SQUEEZEKIT_DATA_DIR, else the sample photos) through the model's own preprocessing. The artefact is
then run on those images (or --check DATA) and compared with the Keras model; below the agreement
threshold (default 99.9 % for float, 98 % for dynamic, 93 % for int8; see --min-agreement) the command exits with status
1 and keeps the file under a name containing FAILED-CHECK. Labels and preprocessing travel inside
.onnx and .tflite files, and in a .json file beside a SavedModel.

An existing output is never lost: without --overwrite the command refuses it before any work; with
it, the new artefact is written beside the old one and replaces it only once it has passed its check.
A folder is replaced only if it is a SavedModel.

examples:
  squeezekit export squeezenet1_1 --format litert --quantize int8 -o squeezenet1_1.int8.tflite
  squeezekit export squeezenet1_1 --format onnx --quantize int8 --calibration photos/
  squeezekit export run/best.keras --format onnx --json
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="pretrained name, .keras or .sqz file")
    parser.add_argument("--format", required=True, choices=["litert", "onnx", "saved_model", "tflm"],
                        help="artefact format (tflm: a folder of C sources for TensorFlow Lite Micro, full-integer int8)")
    parser.add_argument("--quantize", default="none", choices=["none", "float16", "dynamic", "int8"],
                        help="precision (default: %(default)s); int8 = int8 weights and activations")
    parser.add_argument("--calibration", metavar="DATA", help="folder or zip of images for int8 calibration")
    parser.add_argument("--calibration-count", type=int, default=200, help="calibration images to use (default: %(default)s)")
    parser.add_argument("--check", metavar="DATA", help="folder or zip of images for the parity check")
    parser.add_argument("--min-agreement", type=float, default=None,
                        help="top-1 agreement with the Keras model below which the export fails")
    parser.add_argument("-o", "--output", metavar="PATH", help="output file (default: MODEL[.QUANTIZE].EXT here)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output (a folder only if it is a SavedModel); it stays until the "
                             "new artefact has passed its check")
    parser.add_argument("--max-arena", type=int, default=None, metavar="BYTES",
                        help="with --format tflm: refuse a model whose measured tensor arena is larger")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from squeezekit.export.api import export_model, validate_options

    validate_options(args.format, "int8" if args.format == "tflm" and args.quantize == "none" else args.quantize)
    result = export_model(
        args.model, args.format, quantize=args.quantize, calibration=args.calibration, check=args.check,
        output=args.output, min_agreement=args.min_agreement, calibration_count=args.calibration_count,
        overwrite=args.overwrite, max_arena=args.max_arena,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"wrote {result.path} ({result.size_bytes:,} bytes, {args.format}, {result.quantize})")
        if args.format == "tflm" and (result.path / "report.md").is_file():
            print((result.path / "report.md").read_text().rstrip())
        if result.metadata_path:
            print(f"metadata: {result.metadata_path}")
        print(result.check.describe())
    return 0 if result.passed else 1
