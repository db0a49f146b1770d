"""Channel pruning of the CIFAR-10 SqueezeNet: accuracy, MACs, size and int8 latency along the curve.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/slim_cifar.py --model RUN_DIR/best.keras
        [--macs 0.25] [--steps 4] [--finetune-epochs 3] [--finetune-images 50000] [--rounds 7]

MODEL is trained by ``squeezekit train --recipe cifar`` (benchmarks/train_cifar.py). ``squeezekit slim``'s
function removes channels in ``--steps`` steps of equal ratio until the network needs ``--macs`` of its
multiply-accumulates, each step distilled for ``--finetune-epochs`` towards MODEL's outputs on the training photos (no labels).
Every step's model is saved, then MODEL and each of them are exported to int8 ONNX (ONNX Runtime's
QDQ, per-channel) and int8 LiteRT, calibrated on 200 training photos, and measured in this one run:

- float32 top-1 on the 10,000 test photos (ONNX Runtime of the folded weights), int8 top-1 on the same;
- batch-1 latency, 2 threads: ``--rounds`` rounds, each timing every model and engine for 200 calls in
  turn (so that drifts of the machine hit all alike); the median of all calls;
- parameters, MACs, and the int8 file sizes.

Writes benchmarks/results/slim_cifar.{json,md,png}. Run it on an otherwise idle machine.
"""

import argparse
import os
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from _results import RESULTS, write_results

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--macs", type=float, default=0.25)
parser.add_argument("--steps", type=int, default=4)
parser.add_argument("--finetune-epochs", type=int, default=3)
parser.add_argument("--finetune-images", type=int, default=50000)
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--rounds", type=int, default=7)
parser.add_argument("--calls", type=int, default=200)
parser.add_argument("--test-images", type=int, default=None, help="evaluate the int8 models on this many test photos "
                                                                      "(default: all; fewer for a quick try)")
args = parser.parse_args()
data = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "cifar10" / "cifar10-jpeg.zip"
THREADS = 2


def timed_calls(engine, image: np.ndarray, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        engine(image)
        times.append(time.perf_counter() - start)
    return times


with tempfile.TemporaryDirectory() as scratch:
    scratch = Path(scratch)
    from squeezekit.compression.pipeline import evaluate, load_source
    from squeezekit.compression.slim import save_slimmed, slim
    from squeezekit.export.api import export_model
    from squeezekit.runtime.engines import LiteRTEngine, OnnxEngine

    with zipfile.ZipFile(data) as archive:  # the test split as class folders, for evaluation
        archive.extractall(scratch, [n for n in archive.namelist() if n.startswith("cifar10/test/")])
    test_dir = scratch / "cifar10" / "test"
    source = load_source(args.model)
    models = {"dense": args.model}

    def keep(step, config, arrays):
        path = scratch / f"step-{step}.keras"
        save_slimmed(config, arrays, source.metadata, path, args.model)
        models[f"step {step}"] = str(path)

    start = time.perf_counter()
    result = slim(source, macs=args.macs, steps=args.steps, data=data, finetune_epochs=args.finetune_epochs,
                  finetune_images=args.finetune_images, learning_rate=args.lr, eval_dir=test_dir, on_step=keep,
                  log=lambda line: print(line, flush=True))
    slim_seconds = time.perf_counter() - start
    after = [row for row in result.stages if "before" not in row["stage"]]  # source, then each finished step

    engines, rows = {}, []
    for (name, path), stage in zip(models.items(), after):
        row = {"model": name, "stage": stage["stage"], "parameters": stage["parameters"], "macs": stage["macs"],
               "float32_top1": stage["top1"], "conv1_filters": stage["conv1_filters"], "fire_widths": stage["fire_widths"]}
        for fmt, engine_name, engine_type in (("onnx", "onnxruntime-int8", OnnxEngine), ("litert", "litert-int8", LiteRTEngine)):
            exported = export_model(path, fmt, quantize="int8", calibration=data, check=data,
                                    output=scratch / f"{name.replace(' ', '-')}.int8.{'onnx' if fmt == 'onnx' else 'tflite'}",
                                    min_agreement=0.0)
            engine = engine_type(exported.path, THREADS)
            engines[(name, engine_name)] = engine
            row[f"{engine_name}_bytes"] = exported.size_bytes
            row[f"{engine_name}_top1"] = evaluate(engine, test_dir, source.metadata, args.test_images)["top1"]
        rows.append(row)
        print(f"{name}: float32 {100 * row['float32_top1']:.2f} %, onnxruntime-int8 {100 * row['onnxruntime-int8_top1']:.2f} %, "
              f"litert-int8 {100 * row['litert-int8_top1']:.2f} %", flush=True)

    image = np.random.default_rng(0).normal(0, 1, (1, 32, 32, 3)).astype(np.float32)
    times = {key: [] for key in engines}
    for key, engine in engines.items():  # warm-up
        timed_calls(engine, image, 50)
    for _ in range(args.rounds):
        for key, engine in engines.items():
            times[key] += timed_calls(engine, image, args.calls)
    for row in rows:
        for engine_name in ("onnxruntime-int8", "litert-int8"):
            row[f"{engine_name}_ms"] = 1000 * statistics.median(times[(row["model"], engine_name)])

dense = rows[0]
for row in rows:
    for engine_name in ("onnxruntime-int8", "litert-int8"):
        row[f"{engine_name}_ratio"] = row[f"{engine_name}_ms"] / dense[f"{engine_name}_ms"]
    row["top1_loss_points"] = 100 * (dense["float32_top1"] - row["float32_top1"])
    for engine_name in ("onnxruntime-int8", "litert-int8"):  # the int8 model against the dense float32 one
        row[f"{engine_name}_loss_points"] = 100 * (dense["float32_top1"] - row[f"{engine_name}_top1"])
command = (f"python benchmarks/slim_cifar.py --model {args.model} --macs {args.macs} --steps {args.steps} "
           f"--finetune-epochs {args.finetune_epochs} --finetune-images {args.finetune_images} --lr {args.lr}")
# The goal, per engine: its int8 model of the slim network within 1 point of the dense float32 top-1,
# and at most half the latency of its int8 model of the dense network.
goal = [f"{r['model']} ({engine_name})" for r in rows[1:] for engine_name in ("onnxruntime-int8", "litert-int8")
        if r["top1_loss_points"] <= 1.0 and r[f"{engine_name}_loss_points"] <= 1.0 and r[f"{engine_name}_ratio"] <= 0.5]
lines = ["| model | MACs budget | parameters | MACs | top-1 float32 | top-1 ORT int8 | top-1 LiteRT int8 | "
         "ORT int8 ms (ratio) | LiteRT int8 ms (ratio) | LiteRT int8 size |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for row in rows:
    width = row["stage"].split(" (step")[0].replace("source (float32)", "1 (dense)").replace("MACs ", "")
    lines.append(
        f"| {row['model']} | {width} | {row['parameters']:,} | {row['macs'] / 1e6:.1f} M ({row['macs'] / dense['macs']:.2f}x) | "
        f"{100 * row['float32_top1']:.2f} % | {100 * row['onnxruntime-int8_top1']:.2f} % | {100 * row['litert-int8_top1']:.2f} % | "
        f"{row['onnxruntime-int8_ms']:.3f} ({row['onnxruntime-int8_ratio']:.2f}x) | "
        f"{row['litert-int8_ms']:.3f} ({row['litert-int8_ratio']:.2f}x) | {row['litert-int8_bytes']:,} B |")
goal_text = ("Goal (<= 1 point top-1 loss, float32 and that engine's int8, against the dense float32 model, with "
             "that engine's int8 latency <= 0.5x its int8 dense model, same run)")
verdict = f"{goal_text}: met by {', '.join(goal)}." if goal else f"{goal_text}: not met."
markdown = ("\n".join(lines) + f"\n\n{verdict}\n\nLatency: batch 1, {THREADS} threads, median of {args.rounds} x {args.calls} "
            f"calls per model and engine, interleaved (the Python call included). Top-1 on the CIFAR-10 test photos "
            f"({args.test_images or 'all 10,000'} for the int8 models). Slimming, fine-tuning and the float32 evaluations "
            f"took {slim_seconds / 60:.1f} min.\n\n`{command}`\n")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, axes = plt.subplots(1, 2, figsize=(10, 4))
for engine_name, marker in (("onnxruntime-int8", "o"), ("litert-int8", "s")):
    axes[0].plot([r[f"{engine_name}_ms"] for r in rows], [100 * r[f"{engine_name}_top1"] for r in rows], marker=marker,
                 label=engine_name)
axes[0].set(xlabel="int8 latency, batch 1, 2 threads (ms)", ylabel="CIFAR-10 test top-1 (%)", title="accuracy vs int8 latency")
axes[1].plot([r["macs"] / 1e6 for r in rows], [100 * r["float32_top1"] for r in rows], marker="o", label="float32")
axes[1].set(xlabel="MACs (millions)", ylabel="CIFAR-10 test top-1 (%)", title="accuracy vs MACs")
for axis in axes:
    axis.grid(alpha=0.3)
    axis.legend()
for row in rows:
    axes[1].annotate(row["model"], (row["macs"] / 1e6, 100 * row["float32_top1"]), fontsize=8)
figure.tight_layout()
RESULTS.mkdir(exist_ok=True)
figure.savefig(RESULTS / "slim_cifar.png", dpi=120)
write_results("slim_cifar", {"command": command, "slim_seconds": round(slim_seconds, 1), "rows": rows,
                             "stages": result.stages, "goal_met_by": goal}, markdown)
