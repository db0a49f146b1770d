"""Issue 18 §3: the design space in milliseconds and kilobytes. Each configuration of the study's three
sweeps, exported to int8 for a microcontroller (TFLM: flash and tensor arena) and timed in int8 on this
machine (LiteRT and ONNX Runtime, batch 1, one thread, 32x32 input).

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/design_space_int8.py [--no-latency] [--explore DIR]

The configurations are `squeezekit explore`'s own plan (`plan_trials`) for the sweeps of
benchmarks/design_space_study.py (every conv10 linear), on the `cifar` recipe's architecture with 10
classes. Flash, arena and latency depend on the architecture, not on the weights' values, so each
model is initialised at random (seed 0) and calibrated on 200 real CIFAR-10 test photos; accuracy is
the trained study's, joined from an `explore` output folder with --explore (mean over its seeds), and
left out without it.

Exports are kept in runs/design-space-int8/KEY and reused, so `--no-latency` (while a training run holds
the cores: arena and flash do not depend on load) can be followed by a run that only times. Each export
and each timing runs in its own process: LiteRT aborts the process (SIGABRT in allocate_tensors) on
complex bypass's int8 model, which the table reports instead of losing the run.

Writes benchmarks/results/design_space_int8.{json,md} and, with --explore, design_space_int8.png
(top-1 against arena and against latency). Time it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import RESULTS, write_results
from design_space_study import STUDY_SWEEPS
from tflm_export import _test_images

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BASE, INPUT_SIZE, CLASSES, THREADS = "squeezenet1_1", 32, 10, 1
WARMUP, REPEATS = 50, 500
EXPORTS = Path("runs/design-space-int8")
ENGINES = {"litert-int8": "model.tflm/model.tflite", "onnxruntime-int8": "model-int8.onnx"}


def plan() -> tuple[list, dict]:
    """`squeezekit explore`'s trials for the study's sweeps (one seed) and, per sweep, its (value, trial key) points."""
    from squeezekit.explore import parse_sweep, plan_trials
    from squeezekit.training.recipes import get_recipe

    return plan_trials(BASE, get_recipe("cifar").arch_overrides, [parse_sweep(s) for s in STUDY_SWEEPS], 1, INPUT_SIZE)


def configuration(overrides: dict):
    """The architecture a trial of the study trains: v1.1, the `cifar` recipe's overrides, then the trial's."""
    from squeezekit.registry import get_preset
    from squeezekit.training.recipes import get_recipe

    return get_preset(BASE).replace(**{**get_recipe("cifar").arch_overrides, **overrides})


def architecture_figures(config) -> dict:
    from squeezekit.graph import layer_table

    table = layer_table(config, input_size=INPUT_SIZE, classes=CLASSES)
    return {"parameters": table.parameters, "macs": table.macs, "size_int8_bytes": table.size_bytes(8)}


def export(key: str, overrides: dict, images: Path) -> dict:
    """In a child process: the random-init model, its TFLM and ONNX int8 exports, and their figures."""
    import keras

    from squeezekit.config import Preprocessing
    from squeezekit.export import export_model
    from squeezekit.formats.metadata import ModelMetadata, write_sidecar
    from squeezekit.models.squeezenet import SqueezeNet
    from squeezekit.training.recipes import get_recipe

    recipe, config = get_recipe("cifar"), configuration(overrides)
    folder = EXPORTS / key
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = SqueezeNet(config, input_shape=(INPUT_SIZE, INPUT_SIZE, 3), classes=CLASSES)
    path = folder / "model.keras"
    model.save(path)
    labels = tuple((f"c{i}", f"class {i}") for i in range(CLASSES))
    write_sidecar(path, ModelMetadata(labels, Preprocessing.from_dict(recipe.preprocessing.to_dict()), source=key,
                                      extra={"config": json.loads(json.dumps(config.to_dict()))}))
    figures = architecture_figures(config)
    # Random weights give near-uniform scores, so int8 and float disagree on the top class by chance:
    # agreement is not what this measures (the exports' own tests check it on trained models).
    export_model(str(path), "onnx", quantize="int8", calibration=images, output=folder / ENGINES["onnxruntime-int8"],
                 min_agreement=0.0, overwrite=True)
    result = export_model(str(path), "tflm", calibration=images, output=folder / "model.tflm", min_agreement=0.0,
                          overwrite=True)
    report = json.loads((result.path / "report.json").read_text())
    return figures | {k: report[k] for k in ("flash_bytes", "arena_bytes", "operators")}


def time_engine(path: str) -> dict:
    """In a child process: median latency of one 32x32 image through the squeezekit runtime."""
    import numpy as np

    from squeezekit.runtime.engines import open_engine

    engine = open_engine(path, threads=THREADS)
    image = np.random.default_rng(0).uniform(-1, 1, (1, INPUT_SIZE, INPUT_SIZE, 3)).astype("float32")
    for _ in range(WARMUP):
        engine(image)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        engine(image)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"median_ms": 1e3 * statistics.median(times), "p90_ms": 1e3 * times[int(0.9 * len(times))]}


def in_child(job: dict) -> dict:
    """Run one job of this file in its own process; a crash (LiteRT's SIGABRT) becomes {"error": ...}."""
    completed = subprocess.run([sys.executable, __file__, "--job", json.dumps(job)], capture_output=True, text=True)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        reason = f"signal {-completed.returncode}" if completed.returncode < 0 else f"exit {completed.returncode}"
        return {"error": f"{reason}: {last[:200]}"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def trained_top1(explore: Path) -> dict[str, list[float]]:
    """Test top-1 per configuration (its overrides, as JSON) over the seeds of an explore folder."""
    found: dict[str, list[float]] = {}
    for record in explore.glob("trials/*/trial.json"):
        trial = json.loads(record.read_text())
        found.setdefault(json.dumps(trial["overrides"], sort_keys=True), []).append(trial["top1"])
    return found


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            flags = Path("/proc/cpuinfo").read_text()
            vnni = "AVX-512 VNNI" if "avx512_vnni" in flags else "AVX-512" if "avx512f" in flags else "AVX2, no AVX-512"
            return f"{line.split(':', 1)[1].strip()} ({vnni}), {os.cpu_count()} cores"
    return "unknown CPU"


def markdown(rows: list[dict], points: dict, latency: bool, cpu: str) -> str:
    by_key = {row["key"]: row for row in rows}
    has_top1 = any(row.get("top1") for row in rows)
    head = ["value", "parameters", "MACs", "int8 weights", "TFLM flash", "TFLM arena"]
    if latency:
        head += [f"LiteRT int8 ({THREADS} thread)", f"ONNX Runtime int8 ({THREADS} thread)"]
    if has_top1:
        head += ["top-1 (trained)"]
    lines = [f"`cifar` recipe's SqueezeNet v1.1 architecture, {INPUT_SIZE}x{INPUT_SIZE} input, {CLASSES} classes; "
             "int8 exports of randomly initialised models calibrated on 200 CIFAR-10 test photos (flash, arena and "
             "latency depend on the architecture, not on the weights). Latency: median of "
             f"{REPEATS} calls after {WARMUP} warm-up, batch 1, through `squeezekit.runtime`, on {cpu}."]
    for label, sweep_points in points.items():
        lines += ["", f"### {label}", "", "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for value, key in sweep_points:
            row = by_key[key]
            if "error" in row:
                cells = [str(value), f"{row['parameters']:,}", f"{row['macs'] / 1e6:.1f} M",
                         f"{row['size_int8_bytes'] / 1024:.0f} KB", f"export failed: {row['error']}", "-"]
            else:
                cells = [str(value), f"{row['parameters']:,}", f"{row['macs'] / 1e6:.1f} M",
                         f"{row['size_int8_bytes'] / 1024:.0f} KB", f"{row['flash_bytes'] / 1024:.0f} KB",
                         f"{row['arena_bytes'] / 1024:.1f} KB"]
            if latency:
                for engine in ENGINES:
                    timing = row.get("latency", {}).get(engine, {"error": "not exported"})
                    cells.append(f"{timing['median_ms']:.2f} ms" if "median_ms" in timing else
                                 f"fails ({timing['error'][:60]})")
            if has_top1:
                top1 = row.get("top1") or []
                seeds = f"{len(top1)} seed" + ("s" if len(top1) > 1 else "")
                cells.append(f"{100 * statistics.mean(top1):.2f} % ({seeds})" if top1 else "-")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.get("top1") and "arena_bytes" in r]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, x_of, label in ((axes[0], lambda r: r["arena_bytes"] / 1024, "TFLM tensor arena (KB)"),
                              (axes[1], lambda r: r.get("latency", {}).get("litert-int8", {}).get("median_ms"),
                               f"LiteRT int8 latency, batch 1, {THREADS} thread (ms)")):
        for row in shown:
            x = x_of(row)
            if x is None:
                continue
            top1 = [100 * v for v in row["top1"]]
            spread = statistics.stdev(top1) if len(top1) > 1 else 0.0
            axis.errorbar(x, statistics.mean(top1), yerr=spread, fmt="o", capsize=3)
            axis.annotate(row["label"], (x, statistics.mean(top1)), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axis.set_xlabel(label)
        axis.set_ylabel("CIFAR-10 test top-1 (%)")
        axis.grid(alpha=0.3)
    figure.suptitle("SqueezeNet design space: accuracy against microcontroller memory and int8 latency")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--no-latency", action="store_true", help="export and measure arena and flash only")
    parser.add_argument("--explore", type=Path, help="an explore output folder whose trained top-1 to join")
    args = parser.parse_args()
    if args.job:
        job = json.loads(args.job)
        result = export(job["key"], job["overrides"], Path(job["images"])) if job["do"] == "export" else \
            time_engine(job["path"])
        print(json.dumps(result))
        return

    trials, points = plan()
    label_of = {t.key: ", ".join(f"{k}={v}" for k, v in sorted(t.overrides.items())) or "base" for t in trials}
    top1 = trained_top1(args.explore) if args.explore else {}
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        images = _test_images(Path(scratch))
        for trial in trials:
            folder = EXPORTS / trial.key
            record = folder / "figures.json"
            if record.exists():
                figures = json.loads(record.read_text())
            else:
                start = time.perf_counter()
                figures = in_child({"do": "export", "key": trial.key, "overrides": trial.overrides, "images": str(images)})
                if "error" in figures:  # the figures that need no export still describe the configuration;
                    # nothing is recorded, so the next run tries the export again
                    figures = architecture_figures(configuration(trial.overrides)) | figures
                else:
                    figures["export_seconds"] = round(time.perf_counter() - start, 1)
                    record.write_text(json.dumps(figures, indent=1))
            row = {"key": trial.key, "label": label_of[trial.key], "overrides": trial.overrides, **figures}
            if not args.no_latency:
                row["latency"] = {engine: in_child({"do": "time", "path": str(folder / file)})
                                  if (folder / file).exists() else {"error": "not exported"}
                                  for engine, file in ENGINES.items()}
            if top1.get(json.dumps(trial.overrides, sort_keys=True)):
                row["top1"] = top1[json.dumps(trial.overrides, sort_keys=True)]
            rows.append(row)
            print(json.dumps(row), flush=True)
    cpu = cpu_name()
    result = {"rows": rows, "points": points, "cpu": cpu, "threads": THREADS, "latency_measured": not args.no_latency,
              "command": "SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/design_space_int8.py"
                         + (" --no-latency" if args.no_latency else "") + (f" --explore {args.explore}" if args.explore else "")}
    write_results("design_space_int8", result, markdown(rows, points, not args.no_latency, cpu))
    if top1:
        plot(rows, RESULTS / "design_space_int8.png")


if __name__ == "__main__":
    main()
