"""ONNX Runtime int8 with and without the Concat inputs on their output's grid, side by side.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/int8_concat.py [--rounds 20] [--calls 40]

The pretrained v1.1 at its native 227x227, quantised twice by `quantize_onnx_int8` from the same
float32 graph and the same calibration images: once with each Concat input's own calibrated range
(`share_concat=False`, what ONNX Runtime's tools write; its QLinearConcat then requantises through a
lookup table) and once with the output's range (`share_concat=True`, the default since this benchmark;
QLinearConcat copies). Latency: batch 1, 2 threads, the three sessions timed in turn, --rounds rounds of
--calls calls each, median; the float32 graph beside them for the ratio. Agreement with float32 and
top-1 on sample-1000. Writes benchmarks/results/int8_concat.{json,md}. Run it on an idle machine.
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from _results import write_results
from int8_profile import THREADS, interleaved_latency


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    from squeezekit.evaluation import find_labelled_images
    from squeezekit.formats.metadata import imagenet_metadata
    from squeezekit.preprocessing import load_image, preprocess_input
    from squeezekit.registry import get_pretrained
    from squeezekit.runtime.calibration import calibration_images
    from squeezekit.runtime.check import predict_in_batches
    from squeezekit.runtime.engines import OnnxEngine
    from squeezekit.runtime.pretrained import pretrained_artefact
    from squeezekit.runtime.quantize import int8_weight_bits, quantize_onnx_int8

    entry = get_pretrained("squeezenet1_1")
    fp32 = pretrained_artefact("squeezenet1_1", "float32")
    calibration = calibration_images(None, entry.preprocessing)
    work = Path(tempfile.mkdtemp(prefix="int8-concat-"))
    paths = {"float32": fp32}
    for name, share in (("int8, own Concat ranges", False), ("int8, Concat on the output's grid", True)):
        paths[name] = quantize_onnx_int8(fp32, work / f"{share}.onnx", calibration, int8_weight_bits(),
                                         share_concat=share)
    engines = {name: OnnxEngine(path, THREADS) for name, path in paths.items()}

    folder = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "imagenet" / "sample-1000"
    found = find_labelled_images(folder, imagenet_metadata("bench", entry.preprocessing))
    images = preprocess_input(np.stack([load_image(path, entry.preprocessing) for path in found.paths]),
                              preprocessing=entry.preprocessing)
    labels = np.array(found.labels)
    outputs = {name: predict_in_batches(engine, images) for name, engine in engines.items()}

    latency = interleaved_latency(engines, images[:1], args.rounds, args.calls)
    fp32_ms = latency["float32"]["median_ms"]
    rows = {}
    for name in engines:
        ms = latency[name]["median_ms"]
        rows[name] = {"median_ms": ms, "over_fp32": ms / fp32_ms, "size_bytes": Path(paths[name]).stat().st_size,
                      "agreement_with_fp32": float((outputs[name].argmax(1) == outputs["float32"].argmax(1)).mean()),
                      "top1": float((outputs[name].argmax(1) == labels).mean())}
    lines = [f"SqueezeNet v1.1 at 227x227 in ONNX Runtime, batch 1, {THREADS} threads, the sessions timed in turn "
             f"({args.rounds} rounds of {args.calls} calls), median; agreement and top-1 on {len(labels)} photos "
             f"of sample-1000; {int8_weight_bits()}-bit weights.", "",
             "| model | latency | / float32 | top-1 agreement with float32 | top-1 | file |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {row['median_ms']:.2f} ms | {row['over_fp32']:.2f}x | {100 * row['agreement_with_fp32']:.1f} % | "
              f"{100 * row['top1']:.1f} % | {row['size_bytes']:,} B |" for name, row in rows.items()]
    lines += ["", "`SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/int8_concat.py`"]
    write_results("int8_concat", {"rounds": args.rounds, "calls": args.calls, "threads": THREADS,
                                  "images": len(labels), "models": rows}, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
