"""Top-1/top-5 of the pretrained Keras models on the shared ImageNet sample (one photo per class).

Compares with the independent reference figures of the data README (numpy forward pass, Caffe
preprocessing): v1.0 62.5 % / 83.8 %, v1.1 62.1 % / 84.1 %.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/pretrained_accuracy.py

Writes benchmarks/results/pretrained_accuracy.{json,md}.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REFERENCE = {"squeezenet1_0": (0.625, 0.838), "squeezenet1_1": (0.621, 0.841)}
TOLERANCE = 0.003  # the "within 0.3 points"


def main() -> int:
    import keras

    from squeezekit.evaluation import evaluate_images, find_labelled_images
    from squeezekit.opener import open_model

    data_dir = os.environ.get("SQUEEZEKIT_DATA_DIR")
    if not data_dir:
        sys.exit("set SQUEEZEKIT_DATA_DIR to the shared data folder")
    sample = Path(data_dir) / "imagenet" / "sample-1000"
    rows = []
    for arch, (ref_top1, ref_top5) in REFERENCE.items():
        opened = open_model(arch, "keras")
        model, metadata = opened.model, opened.metadata
        images = find_labelled_images(sample, metadata)
        result = evaluate_images(model.predict_on_batch, images, metadata, batch_size=50)
        within = abs(result.top1 - ref_top1) <= TOLERANCE and abs(result.top5 - ref_top5) <= TOLERANCE
        rows.append({
            "model": arch, "weights": metadata.source, "n": result.n, "top1": result.top1, "top5": result.top5,
            "reference_top1": ref_top1, "reference_top5": ref_top5, "within_0.3_points": within,
            "images_per_second": round(result.n / result.seconds, 1),
        })
        print(f"{arch}: top-1 {100 * result.top1:.1f} % (reference {100 * ref_top1:.1f}), top-5 "
              f"{100 * result.top5:.1f} % (reference {100 * ref_top5:.1f}), {result.n} images, "
              f"{result.n / result.seconds:.1f} images/s")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    environment = {"keras": keras.__version__, "backend": keras.backend.backend(), "python": platform.python_version(),
                   "machine": platform.machine(), "cpus": os.cpu_count()}
    (out / "pretrained_accuracy.json").write_text(json.dumps({"environment": environment, "results": rows}, indent=1))
    lines = ["| model | weights | images | top-1 | reference top-1 | top-5 | reference top-5 | images/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['weights']} | {r['n']} | {100 * r['top1']:.1f} % | {100 * r['reference_top1']:.1f} % "
                     f"| {100 * r['top5']:.1f} % | {100 * r['reference_top5']:.1f} % | {r['images_per_second']} |")
    (out / "pretrained_accuracy.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r["within_0.3_points"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
