"""`squeezekit evaluate` on one model in every format it can be opened from, on the shared ImageNet sample.

The pretrained SqueezeNet v1.1 is written as a .keras file (with its metadata), exported to ONNX and
LiteRT in float32 and int8 (each export checked by squeezekit itself) and Deep-Compressed to an 8-bit
.sqz file; then `squeezekit evaluate FILE sample-1000 --json` runs on each, in its own process, as a
user would. The float formats must give the same top-1 as the pretrained name; the int8 and 8-bit
files must stay within their stated agreement (export's 93 % top-1 agreement threshold; here read as
top-1 accuracy within 1.5 points).

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/evaluate_formats.py [--work DIR]

Writes benchmarks/results/evaluate_formats.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
MODEL = "squeezenet1_1"
INT8_TOLERANCE_POINTS = 1.5


def _write_files(work: Path) -> dict[str, Path]:
    from squeezekit.compression.pipeline import compress, load_source
    from squeezekit.export import export_model
    from squeezekit.formats.metadata import write_sidecar
    from squeezekit.opener import open_model

    opened = open_model(MODEL, "keras")
    files = {"keras": work / "v11.keras"}
    opened.model.save(files["keras"])
    metadata = opened.metadata
    extra = {**metadata.extra, "config": opened.config.to_dict()}
    write_sidecar(files["keras"], type(metadata)(metadata.labels, metadata.preprocessing, metadata.source,
                                                 metadata.label_set, extra))
    for fmt, suffix in (("onnx", ".onnx"), ("litert", ".tflite")):
        for quantize in ("none", "int8"):
            name = f"{fmt}-{'fp32' if quantize == 'none' else 'int8'}"
            result = export_model(MODEL, fmt, quantize=quantize, output=work / f"v11.{name}{suffix}", overwrite=True)
            print(f"{name}: {result.check.describe()}", file=sys.stderr)
            files[name] = result.path
    compressed = compress(load_source(MODEL), bits=8)
    files["sqz-8bit"] = work / "v11.8bit.sqz"
    files["sqz-8bit"].write_bytes(compressed.data)
    return files


def _evaluate(model: str, sample: Path) -> dict:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "squeezekit", "evaluate", model, str(sample), "--json"],
                            capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    return {"top1": report["top1"], "top5": report["top5"], "n": report["n"], "seconds": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", help="folder for the model files (default: a temporary folder)")
    args = parser.parse_args()
    data_dir = os.environ.get("SQUEEZEKIT_DATA_DIR")
    if not data_dir:
        sys.exit("set SQUEEZEKIT_DATA_DIR to the shared data folder")
    sample = Path(data_dir) / "imagenet" / "sample-1000"
    work = Path(args.work or tempfile.mkdtemp(prefix="squeezekit-formats-"))
    work.mkdir(parents=True, exist_ok=True)
    files = _write_files(work)
    rows = [{"format": "pretrained name", "model": MODEL, "size_bytes": None, **_evaluate(MODEL, sample)}]
    for kind, path in files.items():
        size = path.stat().st_size
        rows.append({"format": kind, "model": path.name, "size_bytes": size, **_evaluate(str(path), sample)})
        print(f"{kind}: top-1 {100 * rows[-1]['top1']:.1f} %", file=sys.stderr)
    reference = rows[0]["top1"]
    for row in rows:
        exact = "int8" not in row["format"] and "8bit" not in row["format"]
        row["difference_points"] = 100 * (row["top1"] - reference)
        row["expected"] = "same top-1" if exact else f"within {INT8_TOLERANCE_POINTS} points"
        row["ok"] = row["top1"] == reference if exact else abs(row["difference_points"]) <= INT8_TOLERANCE_POINTS
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    command = "SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/evaluate_formats.py"
    (out / "evaluate_formats.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    lines = [f"`{command}`: `squeezekit evaluate MODEL sample-1000` on one model in every format.", "",
             "| format | file | bytes | top-1 | top-5 | images | difference | expected | ok |",
             "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        size = f"{r['size_bytes']:,}" if r["size_bytes"] else "-"
        lines.append(f"| {r['format']} | {r['model']} | {size} | {100 * r['top1']:.1f} % | {100 * r['top5']:.1f} % | "
                     f"{r['n']} | {r['difference_points']:+.1f} | {r['expected']} | {'yes' if r['ok'] else 'no'} |")
    (out / "evaluate_formats.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
