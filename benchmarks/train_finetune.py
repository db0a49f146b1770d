"""Fine-tuning pretrained SqueezeNet v1.1 on the Imagenette subset: val top-1, wall time, images/s.

    SQUEEZEKIT_DATA_DIR=../shared/data python benchmarks/train_finetune.py [--epochs N] [--out RUN_DIR]

Trains `squeezekit train --recipe finetune` (new 10-class conv10 head on the ImageNet weights, one
frozen-backbone epoch, then full fine-tuning) on the 5,000 train photos of
imagenette2-224-subset.zip, validates on its 3,925 val photos, and writes
benchmarks/results/train_finetune.{json,md}. The wall time covers the whole command (decoding,
weight conversion, compilation, training, evaluation, plots).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
parser.add_argument("--out", default="runs/imagenette-finetune-benchmark")
args = parser.parse_args()
data = Path(os.environ["SQUEEZEKIT_DATA_DIR"]) / "imagenette" / "imagenette2-224-subset.zip"
command = [sys.executable, "-m", "squeezekit", "train", "--arch", "squeezenet1_1", "--data", str(data),
           "--recipe", "finetune", "--out", args.out, "--json"]
if args.epochs is not None:
    command += ["--epochs", str(args.epochs)]
start = time.perf_counter()
completed = subprocess.run(command, stdout=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
if completed.returncode != 0:
    sys.exit(completed.returncode)
metrics = json.loads(completed.stdout.strip().splitlines()[-1])
result = {"command": " ".join(command[1:]), "wall_seconds": round(wall, 1), **metrics}
results = Path(__file__).parent / "results"
results.mkdir(exist_ok=True)
(results / "train_finetune.json").write_text(json.dumps(result, indent=1))
table = ("| val top-1 | val top-5 | epochs | wall time | training images/s (median epoch) | parameters |\n"
         "|---|---|---|---|---|---|\n"
         f"| {100 * metrics['top1']:.2f} % | {100 * metrics['top5']:.2f} % | {metrics['epochs']} | {wall / 60:.1f} min | "
         f"{metrics['images_per_second']} | {metrics['parameters']:,} |\n")
(results / "train_finetune.md").write_text(table)
print(table)
