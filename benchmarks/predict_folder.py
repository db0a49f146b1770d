"""`squeezekit predict FOLDER` against its engine: images per second of the whole classification
(decode, resize, crop, preprocess, infer, top-k) beside the engine's own throughput on the same
images already in memory, at the same batch size, in one run.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/predict_folder.py [--tflite v1_1-int8.tflite]

Images: the 1000 photos of sample-1000. Models: the default of `predict` (the pretrained v1.1's int8
ONNX artefact), and an int8 `.tflite` when one is given (`squeezekit export squeezenet1_1 --format
litert --quantize int8`). Each figure is the median of --passes passes, the measurements interleaved.
Also timed: decoding alone (classify with an engine that does nothing: its threads decode, stack and
preprocess) and `squeezekit predict FOLDER --json` as a whole process.

The bound: when decoding and the engine each keep every core busy, the cores do both jobs' work one
after the other, so classify can reach at most 1 / (1 + engine rate / decoding rate) of the engine
alone, however well they overlap. Writes benchmarks/results/predict_folder.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _results import write_results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tflite", help="an int8 .tflite of v1.1 to measure beside the default model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()

    from squeezekit.preprocessing import image_files, load_image, preprocess_input
    from squeezekit.runtime import Classifier

    folder = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "imagenet" / "sample-1000"
    paths = [str(p) for p in image_files(folder)]
    models = {"default (squeezenet1_1)": "squeezenet1_1", **({"int8 .tflite": args.tflite} if args.tflite else {})}
    classifiers = {label: Classifier.load(spec) for label, spec in models.items()}
    preprocessing = next(iter(classifiers.values())).metadata.preprocessing
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        crops = np.stack(list(pool.map(lambda p: load_image(p, preprocessing), paths)))
    batches = [preprocess_input(crops[i: i + args.batch_size], preprocessing=preprocessing)
               for i in range(0, len(crops), args.batch_size)]

    def engine_alone(classifier) -> float:
        start = time.perf_counter()
        for batch in batches:
            classifier.predict(batch)
        return len(paths) / (time.perf_counter() - start)

    def classify(classifier) -> float:
        start = time.perf_counter()
        results = list(classifier.classify(paths, top_k=5, batch_size=args.batch_size))
        assert len(results) == len(paths) and not any(r.error for r in results)
        return len(paths) / (time.perf_counter() - start)

    classes = len(next(iter(classifiers.values())).metadata.labels)
    # classify's own pipeline (decoding threads, batch assembly, top-k) with an engine that does nothing.
    decoding_only = Classifier(lambda batch: np.full((len(batch), classes), 1 / classes, np.float32),
                               next(iter(classifiers.values())).metadata, "no engine")

    def decode_alone() -> float:
        return classify(decoding_only)

    def whole_process(spec: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "squeezekit", "predict", str(folder), "--model", spec, "--json",
                        "--batch-size", str(args.batch_size)], check=True, capture_output=True, timeout=600)
        return len(paths) / (time.perf_counter() - start)

    samples: dict[str, list[float]] = {"decode alone": []}  # with stacking and preprocessing
    for label in classifiers:
        samples[f"{label}: engine alone"] = []
        samples[f"{label}: classify(FOLDER)"] = []
        samples[f"{label}: `squeezekit predict FOLDER --json` process"] = []
    for label, classifier in classifiers.items():  # warm-up
        engine_alone(classifier)
    for _ in range(args.passes):
        samples["decode alone"].append(decode_alone())
        for label, classifier in classifiers.items():
            samples[f"{label}: engine alone"].append(engine_alone(classifier))
            samples[f"{label}: classify(FOLDER)"].append(classify(classifier))
            samples[f"{label}: `squeezekit predict FOLDER --json` process"].append(whole_process(models[label]))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratios = {label: medians[f"{label}: classify(FOLDER)"] / medians[f"{label}: engine alone"] for label in classifiers}
    bounds = {label: 1 / (1 + medians[f"{label}: engine alone"] / medians["decode alone"]) for label in classifiers}
    result = {"command": "SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/predict_folder.py"
                         + (" --tflite FILE" if args.tflite else ""),
              "images": len(paths), "batch_size": args.batch_size, "passes": args.passes, "cpus": os.cpu_count(),
              "images_per_second_median": medians, "samples": samples,
              "classify_over_engine": ratios, "bound": bounds, "goal": 0.8, "met": {k: v >= 0.8 for k, v in ratios.items()}}
    lines = [f"{len(paths)} photos of sample-1000, batch {args.batch_size}, median of {args.passes} passes, "
             f"{os.cpu_count()} cores", "", "| measurement | images/s |", "|---|---:|"]
    lines += [f"| {name} | {value:.0f} |" for name, value in medians.items()]
    lines += ["", "| model | classify / engine alone (goal >= 0.8) | bound on these cores | share of the bound |",
              "|---|---:|---:|---:|"]
    lines += [f"| {label} | {ratio:.2f} | {bounds[label]:.2f} | {ratio / bounds[label]:.0%} |"
              for label, ratio in ratios.items()]
    write_results("predict_folder", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
